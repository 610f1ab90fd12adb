"""TanH: y = tanh(x)."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("TanH", v1="TANH")
class TanHLayer(NeuronLayer):
    """bottom x -> top y, same shape (in-place allowed). dx = dy * (1 - y^2).

    Backward reads only the top data, so computing in place is safe.
    Params: tanh_param.engine is accepted and ignored."""

    def forward(self, bottom, top):
        xp = get_array_module(bottom[0].data)
        xp.tanh(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        y = top[0].data
        bottom[0].diff[...] = top[0].diff * (1 - y * y)
