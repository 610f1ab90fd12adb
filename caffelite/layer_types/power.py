"""Power: y = (shift + scale * x) ^ power."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer("Power", v1="POWER")
class PowerLayer(Layer):
    """bottom x -> top y, same shape (in place allowed).

    dx = dy * power * scale * (shift + scale * x)^(power - 1). When power * scale == 0 the
    output ignores x: y is the constant (power == 0 ? 1 : shift^power) and dx = 0.
    For power == 1 dx = dy * scale, for power == 2 dx = dy * 2 * scale * (shift + scale x),
    as Caffe. For other powers Caffe divides y by (shift + scale x), which is 0/0 where the
    base is 0; we raise the base to power - 1 instead, which is the same elsewhere and the
    true derivative there. The backward needs x, so in place a copy is kept.
    Params: power_param {power, scale, shift}."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.power_param
        self.power, self.scale, self.shift = float(p.power), float(p.scale), float(p.shift)
        self.diff_scale = self.power * self.scale
        with np.errstate(all="ignore"):  # e.g. 0^-1 = inf or (-1)^0.5 = nan, as C's pow
            self.constant = 1.0 if self.power == 0 else float(
                np.power(np.float64(self.shift), self.power))
        self._x = None

    def reshape(self, bottom, top):
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

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
        self._x = x.copy() if top[0] is bottom[0] and self._needs_x() else None
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
        if top[0] is bottom[0]:
            if self._x is None or self._x.shape != dy.shape:
                raise self.error("in-place backward before forward (no saved bottom data "
                                 f"for top shape {tuple(dy.shape)})")
            x = self._x
        else:
            x = bottom[0].data
        g = self._base(x, xp.empty_like(x))
        if self.power != 2:
            xp.power(g, self.power - 1, out=g)
        g *= self.diff_scale
        xp.multiply(dy, g, out=dx)
