"""Exp: y = base ^ (shift + scale * x), base -1 meaning e."""
import math

from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


def log_of_base(layer, field, name):
    """ln(base) for the param message ``name`` (exp_param, log_param): -1 means e (ln = 1
    exactly); any other base must be finite and > 0."""
    base = float(field.base)
    if base == -1:
        return 1.0
    if not base > 0 or math.isinf(base):
        raise layer.error(f"{name}.base must be strictly "
                          f"positive (or -1 for e), got {base}")
    return math.log(base)


@register_layer("Exp", v1="EXP")
class ExpLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    Computed as Caffe does: y = outer * exp(inner * x) with inner = ln(base) * scale and
    outer = base^shift. dx = dy * y * inner, which reads only y, so in place is safe.
    Params: exp_param {base, scale, shift}."""

    def setup(self, bottom, top):
        p = self.layer_param.exp_param
        log_base = log_of_base(self, p, "exp_param")
        self.inner_scale = log_base * float(p.scale)
        shift = float(p.shift)
        self.outer_scale = 1.0 if shift == 0 else math.exp(log_base * shift)

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = get_array_module(x)
        if self.inner_scale == 1:
            xp.exp(x, out=y)
        else:
            xp.multiply(x, self.inner_scale, out=y)
            xp.exp(y, out=y)
        if self.outer_scale != 1:
            y *= self.outer_scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = get_array_module(top[0].diff)
        dx = bottom[0].diff
        xp.multiply(top[0].data, top[0].diff, out=dx)
        if self.inner_scale != 1:
            dx *= self.inner_scale
