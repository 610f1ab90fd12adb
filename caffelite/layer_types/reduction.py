"""Reduction: SUM / ASUM / SUMSQ / MEAN over all axes from `axis` on, times coeff."""
from ..backend import get_array_module
from ..layer import Layer, register_layer

_SUM, _ASUM, _SUMSQ, _MEAN = 1, 2, 3, 4          # ReductionParameter.ReductionOp
_NAMES = {_SUM: "SUM", _ASUM: "ASUM", _SUMSQ: "SUMSQ", _MEAN: "MEAN"}


@register_layer("Reduction")
class ReductionLayer(Layer):
    """bottom x viewed as (num, dim), num = count(0, axis), dim = count(axis);
    top: x.shape[:axis] (axis 0 gives a scalar ()).
    y = coeff * SUM x | SUM |x| | SUM x^2 | (SUM x) / dim, per row.
    dx = coeff * dy * (1 | sign(x) (sign 0 = 0) | 2x | 1/dim).
    Params: reduction_param {operation, axis (may be negative), coeff}.
    """
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.reduction_param
        if p.operation not in _NAMES:
            raise self.error(f"unknown reduction_param.operation {p.operation}")
        self.op = p.operation

    def reshape(self, bottom, top):
        b = bottom[0]
        p = self.layer_param.reduction_param
        try:
            axis = b.canonical_axis(p.axis)
        except Exception as e:
            raise self.error(f"reduction_param.axis: {e} (bottom shape {b.shape})")
        top[0].reshape(b.shape[:axis])
        self.num = b.count_range(0, axis)
        self.dim = b.count_range(axis)
        self.coeff = p.coeff
        if self.op == _MEAN and self.dim:
            self.coeff /= self.dim

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.num, self.dim)
        xp = get_array_module(x)
        if self.op == _ASUM:
            y = xp.abs(x).sum(axis=1)
        elif self.op == _SUMSQ:
            y = (x * x).sum(axis=1)
        else:
            y = x.sum(axis=1)
        if self.coeff != 1:
            y *= self.coeff
        top[0].data.reshape(self.num)[...] = y

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        g = top[0].diff.reshape(self.num, 1) * self.coeff
        dx = bottom[0].diff.reshape(self.num, self.dim)
        if self.op == _ASUM:
            xp = get_array_module(g)
            dx[...] = xp.sign(bottom[0].data.reshape(self.num, self.dim)) * g
        elif self.op == _SUMSQ:
            dx[...] = bottom[0].data.reshape(self.num, self.dim) * (2 * g)
        else:
            dx[...] = g
