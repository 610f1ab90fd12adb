"""Log: y = ln(shift + scale * x) / ln(base), base -1 meaning e."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer
from .exp import log_of_base


@register_layer("Log")
class LogLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    dx = dy * (scale / ln(base)) / (shift + scale * x). base must be > 0 and not 1 (ln 1 = 0
    would divide by zero), or -1 for e. The backward needs x, so in place a copy is kept.
    Params: log_param {base, scale, shift}."""

    def setup(self, bottom, top):
        p = self.layer_param.log_param
        log_base = log_of_base(self, p, "log_param")
        if log_base == 0:
            raise self.error("log_param.base must not be 1 (ln(base) = 0 divides by zero)")
        self.base_scale = 1.0 / log_base
        self.scale, self.shift = float(p.scale), float(p.shift)
        self.backward_scale = self.scale / log_base

    def _inner(self, x, out):
        xp = get_array_module(x)
        if self.scale != 1:
            xp.multiply(x, self.scale, out=out)
        elif out is not x:
            out[...] = x
        if self.shift != 0:
            out += self.shift
        return out

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = get_array_module(x)
        self.keep_input(bottom, top)
        xp.log(self._inner(x, y), out=y)
        if self.base_scale != 1:
            y *= self.base_scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        xp = get_array_module(dy)
        x = self.kept_input(bottom, top)
        g = self._inner(x, xp.empty_like(x))
        xp.divide(dy, g, out=g)
        if self.backward_scale != 1:
            g *= self.backward_scale
        bottom[0].diff[...] = g
