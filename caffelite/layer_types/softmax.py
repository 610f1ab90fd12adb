"""Softmax: y = exp(x - max) / sum(exp(x - max)) along one axis.

The two helpers ``softmax_forward`` / ``softmax_backward`` work on (outer, C, inner) views and
are shared with SoftmaxWithLoss.
"""
from ..backend import get_array_module
from ..layer import Layer, register_layer


def softmax_forward(x3, out=None):
    """Softmax over axis 1 of an (outer, C, inner) array; writes ``out`` if given."""
    xp = get_array_module(x3)
    # Subtracting the per-position max keeps exp() from overflowing; it cancels out.
    e = xp.exp(x3 - x3.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    if out is None:
        return e
    out[...] = e
    return out


def softmax_backward(y3, dy3):
    """dx = (dy - sum_c(dy * y)) * y for (outer, C, inner) arrays."""
    return (dy3 - (dy3 * y3).sum(axis=1, keepdims=True)) * y3


def split_axis(layer, blob, axis):
    """(canonical axis, outer, dim, inner) of ``blob`` around ``axis``; errors name the layer."""
    try:
        a = blob.canonical_axis(axis)
    except Exception as e:
        raise layer.error(f"softmax_param.axis: {e} (bottom shape {blob.shape})") from None
    return a, blob.count_range(0, a), blob.shape[a], blob.count_range(a + 1)


@register_layer("Softmax", v1="SOFTMAX")
class SoftmaxLayer(Layer):
    """bottom x (any shape with at least one axis) -> top y of the same shape (in-place OK).
    y = softmax of x along softmax_param.axis (negative counts from the end); viewed as
    (outer = count(0, axis), C = shape[axis], inner = count(axis + 1)).
    Backward: dx = (dy - sum_c(dy * y)) * y.
    Params: softmax_param.axis (engine is accepted and ignored)."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        self.axis_param = self.layer_param.softmax_param.axis

    def reshape(self, bottom, top):
        if bottom[0].num_axes == 0:
            raise self.error(f"needs a bottom with at least one axis, got shape "
                             f"{bottom[0].shape}")
        _, outer, dim, inner = split_axis(self, bottom[0], self.axis_param)
        self.view = (outer, dim, inner)
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        softmax_forward(bottom[0].data.reshape(self.view), out=top[0].data.reshape(self.view))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        y = top[0].data.reshape(self.view)
        dy = top[0].diff.reshape(self.view)
        bottom[0].diff.reshape(self.view)[...] = softmax_backward(y, dy)
