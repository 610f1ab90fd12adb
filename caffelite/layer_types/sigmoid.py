"""Sigmoid: y = 1 / (1 + exp(-x)), evaluated as 0.5 * tanh(0.5 x) + 0.5."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("Sigmoid", v1="SIGMOID")
class SigmoidLayer(NeuronLayer):
    """bottom x -> top y, same shape (in-place allowed). dx = dy * y * (1 - y).

    The tanh form is Caffe 1.0's: it never overflows exp() for large |x| and matches Caffe's
    rounding. Backward reads only the top data, so computing in place is safe.
    Params: sigmoid_param.engine is accepted and ignored."""

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = get_array_module(x)
        xp.multiply(x, 0.5, out=y)
        xp.tanh(y, out=y)
        y *= 0.5
        y += 0.5

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        y = top[0].data
        bottom[0].diff[...] = top[0].diff * y * (1 - y)
