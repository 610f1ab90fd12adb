"""Fillers: initial values for learnable blobs, drawn from ``caffe.set_random_seed``'s stream.

Values are drawn on the host (NumPy) and copied to the blob, so a seed gives the same weights
on CPU and GPU.
"""
import numpy as np

from . import backend
from .errors import CaffeliteError


def _fans(shape):
    count = int(np.prod(shape, dtype=np.int64))
    fan_in = count // shape[0] if len(shape) > 0 and shape[0] else count
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else count
    return fan_in, fan_out


def _variance_n(param, shape):
    from .proto import caffe_pb2
    fan_in, fan_out = _fans(shape)
    vn = param.variance_norm
    if vn == caffe_pb2.FillerParameter.FAN_OUT:
        return fan_out
    if vn == caffe_pb2.FillerParameter.AVERAGE:
        return (fan_in + fan_out) / 2.0
    return fan_in


def filler_values(param, shape, dtype=np.float64):
    """A host array of ``shape`` filled as FillerParameter ``param`` says.

    Random values are drawn directly in ``dtype`` (float32 for net blobs), so filling a big
    layer needs no float64 temporary twice its size.
    """
    rng = backend.rng()
    shape = tuple(shape)
    kind = param.type
    if param.sparse >= 0 and kind != "gaussian":
        raise CaffeliteError(f"filler '{kind}': sparse is only supported by the gaussian filler")
    dtype = np.dtype(dtype)

    def uniform(lo, hi):
        values = rng.random(size=shape, dtype=dtype)
        values *= hi - lo
        values += lo
        return values

    def normal(mean, std):
        values = rng.standard_normal(size=shape, dtype=dtype)
        values *= std
        values += mean
        return values

    if kind == "constant":
        return np.full(shape, param.value, dtype=dtype)
    if kind == "uniform":
        return uniform(param.min, param.max)
    if kind == "gaussian":
        values = normal(param.mean, param.std)
        if param.sparse >= 0:
            if len(shape) < 1:      # Caffe: CHECK_GE(num_axes, 1); shape(0) is the outputs
                raise CaffeliteError("gaussian filler: sparse needs a blob with at least 1 axis")
            keep_prob = param.sparse / float(shape[0])
            values *= rng.random(size=shape, dtype=dtype) < keep_prob
        return values
    if kind == "positive_unitball":
        values = uniform(0.0, 1.0)
        if len(shape) == 0 or shape[0] == 0:
            return values
        flat = values.reshape(shape[0], -1)
        flat /= flat.sum(axis=1, keepdims=True)
        return flat.reshape(shape)
    if kind == "xavier":
        scale = np.sqrt(3.0 / _variance_n(param, shape))
        return uniform(-scale, scale)
    if kind == "msra":
        std = np.sqrt(2.0 / _variance_n(param, shape))
        return normal(0.0, std)
    if kind == "bilinear":
        if len(shape) != 4 or shape[2] != shape[3]:
            raise CaffeliteError(f"bilinear filler needs a 4-D blob with a square kernel, "
                                 f"got shape {shape}")
        k = shape[3]
        f = int(np.ceil(k / 2.0))
        # Caffe's BilinearFiller centre; equals (k-1)/(2f) for the kernel 2f - f%2 of the
        # upsampling recipe, and Caffe's own formula for any other k.
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        x = np.arange(k)
        w1 = 1 - np.abs(x / f - c)
        kernel = np.outer(w1, w1)
        return np.broadcast_to(kernel, shape).astype(dtype)
    raise CaffeliteError(f"unknown filler type '{kind}' (known: constant, uniform, gaussian, "
                         f"positive_unitball, xavier, msra, bilinear)")


def fill(blob, param):
    """Fill ``blob.data`` in place."""
    values = filler_values(param, blob.shape, blob.dtype)
    blob.data[...] = backend.to_device(values, blob.xp)


def constant_filler(value):
    from .proto import caffe_pb2
    return caffe_pb2.FillerParameter(type="constant", value=value)
