"""Bias: y = x + b, with b broadcast over the axes before and after it.

Also home of the shape rule shared with Scale (``param_blob_shape``, ``broadcast_view``).
"""
from ..backend import get_array_module
from ..fillers import fill
from ..layer import Layer, register_layer


def param_blob_shape(layer, bottom, axis, num_axes, field):
    """bottom.shape[axis : axis + num_axes] (num_axes -1: to the end) for a learned blob."""
    try:
        a = bottom.canonical_axis(axis)
    except Exception as e:
        raise layer.error(f"{field}.axis: {e} (bottom shape {bottom.shape})") from None
    if num_axes < -1:
        raise layer.error(f"{field}.num_axes must be non-negative, or -1 to extend to the end "
                          f"of bottom[0]; got {num_axes}")
    if num_axes >= 0 and bottom.num_axes < a + num_axes:
        raise layer.error(f"{field}: a blob of {num_axes} axes starting at axis {a} extends "
                          f"past bottom[0]'s shape {bottom.shape}")
    return bottom.shape[a:] if num_axes == -1 else bottom.shape[a:a + num_axes]


def broadcast_view(layer, bottom, operand, axis, field, what):
    """(outer, dim, inner) so that ``operand`` lines up with ``bottom`` at ``axis``.

    A scalar operand always uses axis 0 (any axis gives the same result).
    """
    if operand.num_axes == 0:
        a = 0
    else:
        try:
            a = bottom.canonical_axis(axis)
        except Exception as e:
            raise layer.error(f"{field}.axis: {e} (bottom shape {bottom.shape})") from None
    if bottom.shape[a:a + operand.num_axes] != operand.shape:
        raise layer.error(f"{what} shape {operand.shape} does not match bottom[0] shape "
                          f"{bottom.shape} at axes {a}..{a + operand.num_axes - 1} "
                          f"({field}.axis {axis})")
    return (bottom.count_range(0, a), operand.count,
            bottom.count_range(a + operand.num_axes))


def sum_to_operand(g, view):
    """Sum an array shaped like the bottom down to the operand's ``dim`` entries."""
    return g.reshape(view).sum(axis=(0, 2))


@register_layer("Bias")
class BiasLayer(Layer):
    """bottoms: x [, b]; top y = x + b (in-place OK), b broadcast as outer x dim x inner with
    outer = count(0, axis), inner = the count after b's axes.
    With one bottom b is a learned blob of shape x.shape[axis : axis + num_axes]
    (num_axes -1: to the end; 0: a scalar), filled by bias_param.filler (default constant 0).
    With two bottoms b = bottom[1] (a scalar b forces axis 0).
    Backward: dx = dy; db = sum of dy over outer and inner (accumulated for the learned blob,
    assigned for bottom[1]).
    Params: bias_param {axis, num_axes, filler}."""
    min_bottom = 1
    max_bottom = 2
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.bias_param
        self.axis = p.axis
        if len(bottom) > 1:
            return
        if self.blobs:
            if len(self.blobs) != 1:
                raise self.error(f"has {len(self.blobs)} preloaded blobs, expected 1")
            return
        shape = param_blob_shape(self, bottom[0], p.axis, p.num_axes, "bias_param")
        self.blobs.append(self.make_blob(shape, bottom[0]))
        fill(self.blobs[0], p.filler)   # FillerParameter's own default: constant 0

    def _operand(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        self.view = broadcast_view(self, bottom[0], self._operand(bottom), self.axis,
                                   "bias_param", "bias")
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        b = self._operand(bottom).data.reshape(1, -1, 1)
        get_array_module(b).add(bottom[0].data.reshape(self.view), b,
                                out=top[0].data.reshape(self.view))

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        if len(bottom) > 1:
            if propagate_down[1]:
                bottom[1].diff.reshape(-1)[...] = sum_to_operand(dy, self.view)
        elif self.param_needs_grad(0):
            self.blobs[0].diff.reshape(-1)[...] += sum_to_operand(dy, self.view)
        if propagate_down[0] and top[0] is not bottom[0]:
            bottom[0].diff[...] = dy
