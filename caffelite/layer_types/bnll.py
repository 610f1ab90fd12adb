"""BNLL (binomial normal log likelihood): y = softplus(x) = ln(1 + e^x)."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer

# Caffe's kBNLL_THRESHOLD: the backward clips x here before exponentiating.
BNLL_THRESHOLD = 50.0


@register_layer("BNLL", v1="BNLL")
class BNLLLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    y = x + ln(1 + e^-x) for x > 0, ln(1 + e^x) otherwise; logaddexp(0, x) is that same
    overflow-free form in one ufunc. dx = dy * e^m / (1 + e^m) with m = min(x, 50), as Caffe.
    The backward needs x, so in place a copy is kept (Caffe would read y there instead).
    No params."""

    def forward(self, bottom, top):
        x = bottom[0].data
        self.keep_input(bottom, top)
        get_array_module(x).logaddexp(0, x, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        xp = get_array_module(dy)
        x = self.kept_input(bottom, top)
        g = xp.minimum(x, BNLL_THRESHOLD, out=xp.empty_like(x))
        xp.exp(g, out=g)
        g /= g + 1
        xp.multiply(dy, g, out=bottom[0].diff)
