"""ReLU: y = max(x, 0) + negative_slope * min(x, 0)."""
import numpy as np

from ..backend import get_array_module
from ..kernels import parallel
from ..kernels.workspace import scratch
from ..layer import Layer, register_layer

# NumPy's maximum(x, 0) and minimum(x, 0) with a scalar 0 run a slow broadcasting loop (~2x
# the time of an array operand on float32, measured on a 400k-value blob); against a block of
# zeros they take the vectorised one. The block stays in cache; the bits are the same.
ZERO_BLOCK = 1 << 16
_zero_blocks = {}


def _zeros(dtype):
    z = _zero_blocks.get(dtype)
    if z is None:
        z = _zero_blocks[dtype] = np.zeros(ZERO_BLOCK, dtype)
        z.flags.writeable = False
    return z


def relu_flat(x, y, negative_slope=0.0):
    """y = max(x, 0) + negative_slope * min(x, 0) on flat arrays (y may be x): on the host a
    block at a time against the zero block, on a GPU in one pass against a scalar 0. Also
    the epilogue of the layers a ReLU is fused into (``caffelite.transforms.fuse_relu``)."""
    xp = get_array_module(x)
    ns = x.dtype.type(negative_slope)
    step = ZERO_BLOCK if xp is np else max(1, x.size)
    neg = scratch(xp, "relu", (min(step, x.size),), x.dtype) if negative_slope else None
    for i in range(0, x.size, step):
        j = min(i + step, x.size)
        zero = _zeros(x.dtype)[:j - i] if xp is np else x.dtype.type(0)
        if negative_slope:
            t = neg[:j - i]
            xp.minimum(x[i:j], zero, out=t)
            t *= ns
            xp.maximum(x[i:j], zero, out=y[i:j])    # y may be x: the negative part is taken
            y[i:j] += t
        else:
            xp.maximum(x[i:j], zero, out=y[i:j])


@register_layer("ReLU", v1="RELU")
class ReLULayer(Layer):
    """bottom x -> top y, same shape (in-place allowed). dx = dy * ((x > 0) + ns * (x <= 0)),
    evaluated on the bottom data (in place that is y, which has the same sign for ns >= 0).
    Params: relu_param.negative_slope."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        self.negative_slope = self.layer_param.relu_param.negative_slope

    def reshape(self, bottom, top):
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    # Set by caffelite.transforms.fuse_relu when the layer that produces this (in-place)
    # ReLU's blob applies it itself, while its output is still in cache.
    absorbed = False

    def forward(self, bottom, top):
        if self.absorbed:
            return
        # element-wise: flat pieces go to parallel threads
        x, y = bottom[0].data.reshape(-1), top[0].data.reshape(-1)
        ns = self.negative_slope
        parallel.for_slices(x.size, lambda s: relu_flat(x[s], y[s], ns), x.size,
                            get_array_module(x))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x, dy = bottom[0].data.reshape(-1), top[0].diff.reshape(-1)
        dx = bottom[0].diff.reshape(-1)
        parallel.for_slices(x.size, lambda s: self._backward_flat(x[s], dy[s], dx[s]), x.size,
                            get_array_module(x))

    def _backward_flat(self, x, dy, dx):
        xp = get_array_module(x)
        if self.negative_slope:
            dx[...] = xp.where(x > 0, dy, dy * self.negative_slope)
            return
        # Caffe's dy * (x > 0): one pass, no temporaries beyond the mask (dx may be dy)
        mask = scratch(xp, "a", x.shape, bool)
        xp.greater(x, x.dtype.type(0), out=mask)
        xp.multiply(dy, mask, out=dx)
