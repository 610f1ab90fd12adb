"""``caffelite train`` and ``caffelite test``: Caffe's training and scoring commands."""
import signal
import sys
import time

import numpy as np

from .. import backend
from ..errors import CaffeliteError
from ..log import g6, logger
from ..net import Net, TEST
from .flags import net_flags, new_parser, stages
from .main import command
from .time_cmd import select_mode

EFFECTS = ("stop", "snapshot", "none")


class _Progress:
    """A live progress line (iterations/s, ETA) on stdout when it is a terminal."""

    def __init__(self, total, stream=None):
        self.total, self.stream = total, stream or sys.stdout
        try:
            self.enabled = self.stream.isatty()
        except (ValueError, AttributeError):  # a closed or fake stream
            self.enabled = False
        self.t0, self.start_iter = time.perf_counter(), None

    def __call__(self, solver):
        if not self.enabled:
            return
        if self.start_iter is None:
            self.start_iter = solver.iter - 1
        done = solver.iter - self.start_iter
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        left = (self.total - solver.iter) / rate if rate else float("inf")
        self.stream.write(f"\r[{solver.iter}/{self.total}] {rate:.1f} iter/s, ETA "
                          f"{int(left // 60)}m{int(left % 60):02d}s, loss {solver.smoothed_loss:.4f} ")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\n")


def _install_signals(solver, sigint_effect, sighup_effect):
    def handler_for(effect):
        def handle(signum, frame):
            if effect != "none":
                solver.requested_action = effect
        return handle
    signal.signal(signal.SIGINT, handler_for(sigint_effect))
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, handler_for(sighup_effect))


@command("train", "train or fine-tune a model from a solver prototxt")
def train(argv):
    from ..formats.solverfile import read_solver
    from ..proto import caffe_pb2
    from ..solvers import SOLVERS
    parser = new_parser("caffelite train", "train or fine-tune a model")
    parser.add_argument("--solver", default="", help="the solver definition prototxt")
    parser.add_argument("--weights", default="",
                        help="comma-separated caffemodels to fine-tune from")
    parser.add_argument("--snapshot", default="", help="a .solverstate to resume from")
    parser.add_argument("--gpu", default="")
    parser.add_argument("--level", type=int, default=0)
    parser.add_argument("--stage", default=None)
    parser.add_argument("--sigint_effect", default="stop", help="stop, snapshot or none")
    parser.add_argument("--sighup_effect", default="snapshot", help="stop, snapshot or none")
    args = parser.parse_args(argv)
    for effect in (args.sigint_effect, args.sighup_effect):
        if effect not in EFFECTS:
            raise CaffeliteError(f'Invalid signal effect "{effect}" was specified (stop, '
                                 f'snapshot or none)')
    if not args.solver:
        raise CaffeliteError("Need a solver definition to train. (train: give -solver, a "
                             "solver prototxt)")
    if args.snapshot and args.weights:
        raise CaffeliteError("Give a snapshot to resume training or weights to finetune but "
                             "not both.")
    param = read_solver(args.solver)
    param.train_state.level = args.level
    param.train_state.stage.extend(stages(args.stage))
    gpu = args.gpu
    if not gpu and param.HasField("solver_mode") and \
            param.solver_mode == caffe_pb2.SolverParameter.GPU:
        gpu = str(param.device_id)
    select_mode(gpu, training=True)
    if args.snapshot or args.weights:
        del param.weights[:]
    if args.weights:
        param.weights.append(args.weights)
    if param.type not in SOLVERS:
        raise CaffeliteError(f"{args.solver}: unknown solver type '{param.type}' (known: "
                             f"{', '.join(SOLVERS)})")
    solver = SOLVERS[param.type](param, source=args.solver)
    _install_signals(solver, args.sigint_effect, args.sighup_effect)
    if args.snapshot:
        logger.info("Resuming from %s", args.snapshot)
        solver.restore(args.snapshot)
    progress = _Progress(param.max_iter)
    solver.on_iteration = progress
    logger.info("Starting Optimization")
    try:
        solver.solve()
    finally:
        progress.close()
    logger.info("Optimization Done.")
    return 0


@command("test", "score a model with trained weights over N iterations")
def test(argv):
    parser = new_parser("caffelite test", "score a model")
    net_flags(parser)
    args = parser.parse_args(argv)
    if not args.model:
        raise CaffeliteError("Need a model definition to score. (test: give -model, a net "
                             "prototxt)")
    if not args.weights:
        raise CaffeliteError("Need model weights to score. (test: give -weights, the trained "
                             "caffemodel)")
    if args.iterations < 1:       # Caffe would print nan scores
        raise CaffeliteError(f"test: -iterations must be at least 1, got {args.iterations}")
    select_mode(args.gpu)
    net = Net(args.model, TEST, level=args.level, stages=stages(args.stage))
    net.copy_from(args.weights)
    logger.info("Running for %d iterations.", args.iterations)
    sums, loss = None, 0.0
    for i in range(args.iterations):
        loss += net.forward_prefilled()
        values = [backend.asnumpy(net.blobs[o].data).astype(np.float64).ravel()
                  for o in net.outputs]
        for name, vals in zip(net.outputs, values):
            for v in vals:
                logger.info("Batch %d, %s = %s", i, name, g6(v))
        sums = values if sums is None else [s + v for s, v in zip(sums, values)]
    logger.info("Loss: %s", g6(loss / max(args.iterations, 1)))
    for name, total in zip(net.outputs, sums or []):
        weight = net.blob_loss_weights[name]
        for v in total / args.iterations:
            suffix = f" (* {g6(weight)} = {g6(weight * v)} loss)" if weight else ""
            logger.info("%s = %s%s", name, g6(v), suffix)
    return 0
