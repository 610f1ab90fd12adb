"""caffelite: Caffe-compatible declarative deep learning in Python.

``import caffelite as caffe`` gives pycaffe's module-level API.
"""
import os as _os

# OpenBLAS's idle threads spin for about 2^28 cycles (~0.1 s) after every matmul, holding
# the cores that caffelite's own threads (im2col, pooling, ...) need next; 2^4 cycles lets
# them sleep at once. OpenBLAS reads this when NumPy is first imported, so it takes effect
# when caffelite is imported before NumPy (the command line always is); a value already in
# the environment is kept.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
from .backend import set_mode_cpu, set_mode_gpu, set_device, set_random_seed
from .blob import Blob
from .errors import CaffeliteError, LayerError, NetError, PrototxtError, WeightsError
from .layer import Layer, layer_type_list, register_layer
from .net import Net, TRAIN, TEST
from . import io, proto
from .classifier import Classifier
from .detector import Detector
from .net_spec import NetSpec, layers, params, to_proto
from .solvers import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver,
                      RMSPropSolver, SGDSolver, get_solver)

# ``log`` here is pycaffe's function; the module caffelite/log.py stays importable by name
# (``from caffelite.log import ...``), which is how caffelite itself imports it.
from .pycaffe_runtime import (NCCL, Timer, has_nccl, init_log, log, set_multiprocess,
                              set_solver_count, set_solver_rank, solver_count, solver_rank)

__version__ = "1.0.0"

__all__ = ["Net", "Blob", "Layer", "TRAIN", "TEST", "set_mode_cpu", "set_mode_gpu",
           "set_device", "set_random_seed", "layer_type_list", "register_layer",
           "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver", "AdaDeltaSolver",
           "AdamSolver", "get_solver", "Classifier", "Detector", "NetSpec", "layers", "params",
           "to_proto", "CaffeliteError", "LayerError", "NetError", "PrototxtError", "WeightsError",
           "init_log", "log", "Timer", "solver_count", "set_solver_count", "solver_rank",
           "set_solver_rank", "set_multiprocess", "has_nccl", "NCCL"]
