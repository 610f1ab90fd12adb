"""Swish: y = x * sigmoid(beta * x)."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("Swish")
class SwishLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    s = sigmoid(beta x), evaluated as 0.5 tanh(0.5 beta x) + 0.5 like Caffe's Sigmoid;
    y = x s; dx = dy * (beta y + s (1 - beta y)). The backward reads y and the s kept from
    the forward, never x, so in place is safe. Params: swish_param.beta."""

    def setup(self, bottom, top):
        self.beta = float(self.layer_param.swish_param.beta)
        self._sig = None

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        s = xp.multiply(x, 0.5 * self.beta, out=xp.empty_like(x))
        xp.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        self._sig = s
        xp.multiply(x, s, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        y, dy = top[0].data, top[0].diff
        s = self._sig
        if s is None or s.shape != y.shape:
            raise self.error(f"backward before forward (no sigmoid kept for top shape "
                             f"{tuple(y.shape)})")
        by = self.beta * y
        g = s * (1 - by)
        g += by
        bottom[0].diff[...] = dy * g
