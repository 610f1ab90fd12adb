"""``caffelite time --model net.prototxt``: Caffe's per-layer forward/backward benchmark."""
import time

import numpy as np

from .. import backend
from ..errors import CaffeliteError
from ..kernels import parallel
from ..log import g6, logger
from ..net import Net, TEST, TRAIN
from .flags import net_flags, new_parser, stages
from .main import command


def _sync():
    if backend.mode() == backend.GPU:
        import cupy
        cupy.cuda.Device().synchronize()


def _ms(t0):
    _sync()
    return (time.perf_counter() - t0) * 1000.0


def gpu_ids(gpu_flag):
    """Caffe's -gpu: comma-separated device ids, or "all" (every device CuPy sees)."""
    if gpu_flag == "all":
        try:
            import cupy
            return list(range(cupy.cuda.runtime.getDeviceCount()))
        except Exception:
            return []
    try:
        return [int(g) for g in gpu_flag.split(",")]
    except ValueError:
        raise CaffeliteError(f"-gpu '{gpu_flag}': give comma-separated GPU ids (e.g. 0 or "
                             f"0,1) or 'all'") from None


def select_mode(gpu_flag, training=False):
    """CPU or the first GPU of -gpu, logged as Caffe's train (``Using GPUs ...``) or test
    and time (``Use GPU with device ID ...``) log it."""
    ids = gpu_ids(gpu_flag) if gpu_flag else []
    if gpu_flag and not ids:
        raise CaffeliteError("-gpu all: no CUDA device is visible (is CuPy installed?)")
    if not ids:
        backend.set_mode_cpu()
        logger.info("Use CPU.")
        logger.info("Host threads: %d (set CAFFELITE_NUM_THREADS or OMP_NUM_THREADS to "
                    "change)", parallel.num_threads())
        return
    backend.set_device(ids[0])
    backend.set_mode_gpu()
    if not training:
        logger.info("Use GPU with device ID %d", ids[0])
        return
    logger.info("Using GPUs %s", ", ".join(str(i) for i in ids))
    import cupy
    for i in ids:
        name = cupy.cuda.runtime.getDeviceProperties(i)["name"]
        logger.info("GPU %d: %s", i, name.decode() if isinstance(name, bytes) else name)
    if len(ids) > 1:
        logger.warning("caffelite trains on one device: GPU %d only (Caffe would run one "
                       "solver per listed GPU)", ids[0])


@command("time", "benchmark the execution time of a model, layer by layer")
def time_model(argv):
    parser = new_parser("caffelite time", "time a model's forward and backward, per layer")
    net_flags(parser)
    args = parser.parse_args(argv)
    if not args.model:
        raise CaffeliteError("Need a model definition to time. (time: give -model, a net "
                             "prototxt)")
    phase = {"": TRAIN, "TRAIN": TRAIN, "TEST": TEST}.get(args.phase.upper())
    if phase is None:
        raise CaffeliteError(f"time: --phase must be TRAIN or TEST, got '{args.phase}'")
    if args.iterations < 1:       # Caffe would print nan averages
        raise CaffeliteError(f"time: -iterations must be at least 1, got {args.iterations}")
    select_mode(args.gpu)
    net = Net(args.model, phase, level=args.level, stages=stages(args.stage))
    logger.info("Performing Forward")
    loss = net.forward_prefilled()
    logger.info("Initial loss: %s", g6(loss))
    logger.info("Performing Backward")
    net._backward(len(net.layers) - 1, 0)
    n = len(net.layers)
    fwd, bwd = np.zeros(n), np.zeros(n)
    logger.info("*** Benchmark begins ***")
    logger.info("Testing for %d iterations.", args.iterations)
    total0 = time.perf_counter()
    fwd_total = bwd_total = 0.0
    for it in range(1, args.iterations + 1):
        it0 = time.perf_counter()
        f0 = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            net.layers[i].Forward(net._bottom_vecs[i], net._top_vecs[i])
            fwd[i] += _ms(t0)
        fwd_total += _ms(f0)
        b0 = time.perf_counter()
        for i in range(n - 1, -1, -1):
            t0 = time.perf_counter()
            net.layers[i].Backward(net._top_vecs[i], net._bottom_need_backward[i],
                                   net._bottom_vecs[i])
            bwd[i] += _ms(t0)
        bwd_total += _ms(b0)
        logger.info("Iteration: %d forward-backward time: %s ms.", it, g6(_ms(it0)))
    total = _ms(total0)
    logger.info("Average time per layer: ")
    for i, name in enumerate(net._layer_names):
        logger.info("%10s\tforward: %s ms.", name, g6(fwd[i] / args.iterations))
        logger.info("%10s\tbackward: %s ms.", name, g6(bwd[i] / args.iterations))
    logger.info("Average Forward pass: %s ms.", g6(fwd_total / args.iterations))
    logger.info("Average Backward pass: %s ms.", g6(bwd_total / args.iterations))
    logger.info("Average Forward-Backward: %s ms.", g6(total / args.iterations))
    logger.info("Total Time: %s ms.", g6(total))
    logger.info("*** Benchmark ends ***")
    return 0
