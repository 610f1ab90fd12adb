"""ELU: y = x for x > 0, alpha * (e^x - 1) otherwise."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("ELU")
class ELULayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    y = max(x, 0) + alpha * (exp(min(x, 0)) - 1); dx = dy if x > 0, else dy * (y + alpha).
    In place the sign test needs x, which is gone: for alpha >= 0, y > 0 exactly when x > 0,
    so y serves; for alpha < 0 that fails and the mask x > 0 is kept from the forward.
    Params: elu_param.alpha."""

    def setup(self, bottom, top):
        self.alpha = float(self.layer_param.elu_param.alpha)
        self._positive = None

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        y = top[0].data
        in_place = top[0] is bottom[0]
        self._positive = x > 0 if in_place and self.alpha < 0 else None
        neg = xp.minimum(x, 0, out=xp.empty_like(x))
        xp.expm1(neg, out=neg)
        neg *= self.alpha
        xp.maximum(x, 0, out=y)
        y += neg

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = get_array_module(top[0].diff)
        y, dy = top[0].data, top[0].diff
        if top[0] is not bottom[0]:
            positive = bottom[0].data > 0
        elif self._positive is not None and self._positive.shape == y.shape:
            positive = self._positive
        else:
            positive = y > 0
        bottom[0].diff[...] = xp.where(positive, dy, dy * (y + self.alpha))
