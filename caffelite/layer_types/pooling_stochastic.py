"""STOCHASTIC pooling's forward (Caffe had it on the GPU only; here it is one xp path).

TRAIN samples one cell per window with probability proportional to its value (inputs should
be >= 0): a uniform u in (0, 1] per window, and the first cell, in row-major scan, whose
running sum reaches u * sum(x), as Caffe's kernel. TEST outputs sum(x^2) / sum(x).
"""
import numpy as np

from .. import backend
from ..backend import to_device
from ..kernels.im2col import taps
from ..proto import caffe_pb2


class StochasticPoolingMixin:
    def _forward_stochastic(self, x, xp, top):
        h, w = x.shape[2:]
        views = [v for _, v in self._tap_views(self._padded_input(x, 0))]
        total = xp.zeros(x.shape[:2] + self.out, dtype=x.dtype)
        for v in views:
            total += v
        if self.phase != caffe_pb2.TRAIN:
            sq = xp.zeros_like(total)
            for v in views:
                sq += v * v
            # Caffe starts the sum at FLT_MIN, so an all-zero window gives 0, not 0/0.
            top[0].data[...] = sq / (total + x.dtype.type(np.finfo(np.float32).tiny))
            return
        # (0, 1] like curand's uniform: a zero-valued cell can never reach a positive
        # threshold before a positive one has.
        u = 1.0 - backend.rng().random(total.shape)
        thres = to_device(u.astype(x.dtype), xp) * total
        # Taps that lie past the bottom/right edge (ceil-mode windows) are not cells; windows
        # that start past the image have none and keep index -1, value 0.
        valid = to_device(np.stack([np.outer(self.h_starts + i < h, self.w_starts + j < w)
                                    for i, j in taps(self.k)]), xp)
        cells = to_device(self._cell_indices(w), xp)
        cum = xp.zeros_like(total)
        found = xp.zeros(total.shape, dtype=bool)
        idx = xp.full(total.shape, -1, dtype=np.int32)
        val = xp.zeros_like(total)
        for t, v in enumerate(views):
            cum += v
            hit = (cum >= thres) & valid[t] & ~found
            idx = xp.where(hit, cells[t], idx)
            val = xp.where(hit, v, val)
            found |= hit
        self.argmax = idx
        top[0].data[...] = val
