"""Caffe's solvers: the training loop plus one small module per update rule."""
from ..errors import CaffeliteError
from .adadelta import AdaDeltaSolver
from .adagrad import AdaGradSolver
from .adam import AdamSolver
from .nesterov import NesterovSolver
from .rmsprop import RMSPropSolver
from .sgd import SGDSolver
from .solver import NonFiniteLossError, Solver

SOLVERS = {cls.type: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
                                     AdaDeltaSolver, AdamSolver)}


def get_solver(solver_file):
    """Build the solver named by the file's ``type`` (after Caffe's upgrades)."""
    from ..formats.solverfile import read_solver
    param = read_solver(solver_file)
    if param.type not in SOLVERS:
        raise CaffeliteError(f"{solver_file}: unknown solver type '{param.type}' (known: "
                             f"{', '.join(SOLVERS)})")
    return SOLVERS[param.type](solver_file)


__all__ = ["Solver", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "get_solver", "NonFiniteLossError"]
