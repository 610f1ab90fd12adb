"""Read a solver prototxt, applying Caffe's solver upgrades (reference §3.11)."""
import os

from ..errors import CaffeliteError
from .prototxt import read_prototxt

# deprecated SolverParameter.solver_type enum value -> type string
SOLVER_TYPE_NAMES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta",
                     5: "Adam"}


def upgrade_solver(param, source="<solver>"):
    """solver_type enum -> type string (both set is an error). Returns True if changed."""
    if not param.HasField("solver_type"):
        return False
    if param.HasField("type"):
        raise CaffeliteError(f"{source}: solver has both 'type' and the deprecated "
                             f"'solver_type'; keep only 'type'")
    param.type = SOLVER_TYPE_NAMES[param.solver_type]
    param.ClearField("solver_type")
    return True


def default_snapshot_prefix(param, path):
    """Unset prefix -> the solver file without its extension; a directory -> dir/<stem>."""
    stem = os.path.splitext(path)[0]
    if not param.HasField("snapshot_prefix"):
        param.snapshot_prefix = stem
    elif os.path.isdir(param.snapshot_prefix):
        param.snapshot_prefix = os.path.join(param.snapshot_prefix, os.path.basename(stem))


def read_solver(path):
    from ..proto import caffe_pb2
    path = os.fspath(path)
    param = read_prototxt(path, caffe_pb2.SolverParameter())
    upgrade_solver(param, path)
    default_snapshot_prefix(param, path)
    return param
