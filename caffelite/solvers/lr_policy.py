"""Caffe's learning-rate policies; ``iter`` is the number of completed updates."""
import math

from ..errors import CaffeliteError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


def check_policy(param, source):
    policy = param.lr_policy
    if policy not in POLICIES:
        raise CaffeliteError(f"{source}: unknown lr_policy '{policy}' (known: "
                             f"{', '.join(POLICIES)})")
    if policy in ("step", "sigmoid") and param.stepsize <= 0:
        raise CaffeliteError(f"{source}: lr_policy '{policy}' needs stepsize > 0, "
                             f"got {param.stepsize}")


def _pow(base, exponent):
    """C's pow, which Caffe uses: NaN for a negative base and a non-integer exponent (poly
    past max_iter), where Python's ** would give a complex number; inf for 0 to a negative
    power."""
    try:
        return math.pow(base, exponent)
    except ValueError:
        return math.inf if base == 0 else math.nan
    except OverflowError:
        return math.inf


def learning_rate(solver):
    """The rate for update ``solver.iter``; multistep advances solver.current_step by at most
    one per call (and logs it), as Caffe's GetLearningRate does."""
    p = solver.param
    it = solver.iter
    policy = p.lr_policy
    if policy == "fixed":
        return p.base_lr
    if policy == "step":
        solver.current_step = it // p.stepsize
        return p.base_lr * _pow(p.gamma, solver.current_step)
    if policy == "exp":
        return p.base_lr * _pow(p.gamma, it)
    if policy == "inv":
        return p.base_lr * _pow(1.0 + p.gamma * it, -p.power)
    if policy == "multistep":
        if solver.current_step < len(p.stepvalue) and it >= p.stepvalue[solver.current_step]:
            solver.current_step += 1
            solver.log.info("MultiStep Status: Iteration %d, step = %d", it,
                            solver.current_step)
        return p.base_lr * _pow(p.gamma, solver.current_step)
    if policy == "poly":
        return p.base_lr * _pow(1.0 - it / float(p.max_iter), p.power)
    if policy == "sigmoid":
        return p.base_lr / (1.0 + math.exp(-p.gamma * (it - p.stepsize)))
    raise CaffeliteError(f"unknown lr_policy '{policy}'")
