"""Power: y = (shift + scale * x) ^ power."""
import numpy as np

from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("Power", v1="POWER")
class PowerLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    dx = dy * power * scale * (shift + scale * x)^(power - 1). When power * scale == 0 the
    output ignores x: y is the constant (power == 0 ? 1 : shift^power) and dx = 0.
    For power == 1 dx = dy * scale, for power == 2 dx = dy * 2 * scale * (shift + scale x),
    as Caffe. For other powers Caffe divides y by (shift + scale x), which is 0/0 where the
    base is 0; we raise the base to power - 1 instead, which is the same elsewhere and the
    true derivative there. The backward needs x, so in place a copy is kept.
    Params: power_param {power, scale, shift}."""

    def setup(self, bottom, top):
        p = self.layer_param.power_param
        self.power, self.scale, self.shift = float(p.power), float(p.scale), float(p.shift)
        self.diff_scale = self.power * self.scale
        with np.errstate(all="ignore"):  # e.g. 0^-1 = inf or (-1)^0.5 = nan, as C's pow
            self.constant = 1.0 if self.power == 0 else float(
                np.power(np.float64(self.shift), self.power))

    def _needs_x(self):
        return self.diff_scale != 0 and self.power != 1

    def _base(self, x, out):
        xp = get_array_module(x)
        if self.scale != 1:
            xp.multiply(x, self.scale, out=out)
        elif out is not x:
            out[...] = x
        if self.shift != 0:
            out += self.shift
        return out

    def forward(self, bottom, top):
        y = top[0].data
        if self.diff_scale == 0:
            y[...] = self.constant
            return
        x = bottom[0].data
        xp = get_array_module(x)
        if self._needs_x():
            self.keep_input(bottom, top)
        self._base(x, y)
        if self.power == 2:
            xp.square(y, out=y)
        elif self.power != 1:
            xp.power(y, self.power, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        if self.diff_scale == 0:
            dx[...] = 0
            return
        dy = top[0].diff
        xp = get_array_module(dy)
        if self.power == 1:
            xp.multiply(dy, self.diff_scale, out=dx)
            return
        x = self.kept_input(bottom, top)
        g = self._base(x, xp.empty_like(x))
        if self.power != 2:
            xp.power(g, self.power - 1, out=g)
        g *= self.diff_scale
        xp.multiply(dy, g, out=dx)
