"""BlobProto <-> NumPy, decoding the packed floats without Python lists."""
import numpy as np

from ..errors import CaffeliteError


def blobproto_shape(bp):
    """The shape a BlobProto describes: legacy 4-D dims if any is set, else ``shape.dim``."""
    if bp.HasField("num") or bp.HasField("channels") or bp.HasField("height") \
            or bp.HasField("width"):
        return (bp.num, bp.channels, bp.height, bp.width)
    return tuple(int(d) for d in bp.shape.dim)


def _values(repeated, dtype):
    # A repeated scalar field converts to an array in one C-level pass.
    return np.array(repeated, dtype=dtype) if len(repeated) else np.zeros(0, dtype=dtype)


def blobproto_to_array(bp, return_diff=False):
    shape = blobproto_shape(bp)
    if return_diff:
        values = _values(bp.double_diff, np.float64) if len(bp.double_diff) \
            else _values(bp.diff, np.float32)
    else:
        values = _values(bp.double_data, np.float64) if len(bp.double_data) \
            else _values(bp.data, np.float32)
    count = int(np.prod(shape, dtype=np.int64))
    if values.size != count:
        raise CaffeliteError(f"BlobProto holds {values.size} values but its shape {shape} "
                             f"needs {count}")
    return values.astype(np.float32, copy=False).reshape(shape)


def array_to_blobproto(arr, diff=None, legacy_dims=False):
    from ..proto import caffe_pb2
    arr = np.asarray(arr)
    bp = caffe_pb2.BlobProto()
    if legacy_dims:
        dims = (1,) * (4 - arr.ndim) + tuple(arr.shape)
        bp.num, bp.channels, bp.height, bp.width = dims
    else:
        bp.shape.dim.extend(int(d) for d in arr.shape)
    bp.data.extend(arr.astype(np.float32).ravel())
    if diff is not None:
        bp.diff.extend(np.asarray(diff, dtype=np.float32).ravel())
    return bp
