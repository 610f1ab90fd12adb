"""Eltwise: element-wise PROD, SUM (with per-bottom coefficients) or MAX of k >= 2 bottoms."""
import numpy as np

from ..backend import get_array_module
from ..kernels import parallel
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .relu import ZERO_BLOCK, relu_flat

_OP = caffe_pb2.EltwiseParameter
_OP_NAMES = {_OP.PROD: "PROD", _OP.SUM: "SUM", _OP.MAX: "MAX"}


@register_layer("Eltwise", v1="ELTWISE")
class EltwiseLayer(Layer):
    """bottoms x_0..x_{k-1}, all of one shape -> top y of that shape.

    PROD: y = prod_i x_i; dx_i = dy * prod_{j != i} x_j (stable_prod_grad, the default) or
          dy * y / x_i.
    SUM:  y = sum_i c_i x_i (c_i = 1 unless coeff is given); dx_i = c_i dy.
    MAX:  y = max_i x_i; dx_i = dy where x_i won, else 0. Winner rule (Caffe's): bottom 0
          beats bottom 1 only if strictly greater (a tie goes to bottom 1); each later bottom
          must be strictly greater than the running max to take over.
    Params: eltwise_param {operation, coeff, stable_prod_grad}."""
    min_bottom = 2
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.eltwise_param
        self.op = p.operation
        if self.op not in _OP_NAMES:
            raise self.error(f"eltwise_param.operation {self.op} is not PROD, SUM or MAX")
        if len(p.coeff) not in (0, len(bottom)):
            raise self.error(f"eltwise_param.coeff must be given 0 times or once per bottom "
                             f"({len(bottom)} bottoms), got {len(p.coeff)}")
        # Caffe 1.0 rejects coefficients only for PROD; with MAX they are accepted and unused.
        if self.op == _OP.PROD and len(p.coeff):
            raise self.error("eltwise_param.coeff is only allowed with operation SUM "
                             "(got operation PROD)")
        self.coeffs = [float(c) for c in p.coeff] or [1.0] * len(bottom)
        self.stable_prod_grad = p.stable_prod_grad
        self.max_idx = None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        for i, b in enumerate(bottom[1:], 1):
            if b.shape != shape:
                raise self.error(f"all bottoms must have the same shape: bottom 0 has shape "
                                 f"{shape}, bottom {i} has shape {b.shape}")
        if top[0] is not bottom[0]:
            top[0].reshape(shape)

    def forward(self, bottom, top):
        xp = get_array_module(bottom[0].data)
        y = top[0].data
        if self.op == _OP.PROD:
            xp.multiply(bottom[0].data, bottom[1].data, out=y)
            for b in bottom[2:]:
                y *= b.data
        elif self.op == _OP.SUM:
            # y may alias bottom 0 only (in place is top i == bottom i), and every update is
            # element by element, so the sum builds in y: c0 x0 (+ c_i x_i ...).
            c0, c1 = self.coeffs[0], self.coeffs[1]
            if c0 == 1 and c1 == 1 and len(bottom) == 2 and self.fused_relu is not None:
                self._add_relu(bottom[0].data.reshape(-1), bottom[1].data.reshape(-1),
                               y.reshape(-1))
                return
            if c0 == 1 and c1 == 1:
                parallel.ufunc(xp.add, bottom[0].data.reshape(-1), bottom[1].data.reshape(-1),
                               out=y.reshape(-1))
            else:
                if c0 == 1:
                    y[...] = bottom[0].data
                else:
                    xp.multiply(bottom[0].data, c0, out=y)
                y += bottom[1].data if c1 == 1 else c1 * bottom[1].data
            for c, b in zip(self.coeffs[2:], bottom[2:]):
                if c == 1:
                    y += b.data
                else:
                    y += c * b.data
            if self.fused_relu is not None:
                yf = y.reshape(-1)
                parallel.for_slices(yf.size, lambda s: relu_flat(yf[s], yf[s], self.fused_relu),
                                    yf.size, xp)
        else:
            a, b = bottom[0].data, bottom[1].data
            first = a > b
            mask = xp.where(first, 0, 1).astype(xp.int32)
            best = xp.where(first, a, b)
            for i, blob in enumerate(bottom[2:], 2):
                better = blob.data > best
                best = xp.where(better, blob.data, best)
                mask[better] = i
            y[...] = best
            self.max_idx = mask

    # Set by caffelite.transforms.fuse_relu (SUM only): the negative_slope of the in-place
    # ReLU that follows, applied here while the sum is in cache.
    fused_relu = None

    def _add_relu(self, a, b, y):
        """y = ReLU(a + b), block by block (the same roundings as the two layers)."""
        ns = self.fused_relu
        xp = get_array_module(y)
        step = ZERO_BLOCK if xp is np else max(1, y.size)     # one pass each on a GPU

        def piece(s):
            for i in range(s.start, s.stop, step):
                blk = slice(i, min(i + step, s.stop))
                xp.add(a[blk], b[blk], out=y[blk])
                relu_flat(y[blk], y[blk], ns)
        parallel.for_slices(y.size, piece, y.size, xp)

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        for i, b in enumerate(bottom):
            if not propagate_down[i]:
                continue
            if self.op == _OP.PROD:
                if self.stable_prod_grad:
                    others = [o.data for j, o in enumerate(bottom) if j != i]
                    grad = others[0] * dy
                    for o in others[1:]:
                        grad *= o
                else:
                    grad = top[0].data / b.data * dy
            elif self.op == _OP.SUM:
                grad = dy if self.coeffs[i] == 1 else self.coeffs[i] * dy
            else:
                grad = dy * (self.max_idx == i)
            b.diff[...] = grad
