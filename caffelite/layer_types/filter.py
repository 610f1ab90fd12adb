"""Filter: keep the items (along axis 0) whose selector is non-zero."""
import numpy as np

from ..backend import asnumpy, get_array_module
from ..layer import Layer, register_layer


@register_layer("Filter")
class FilterLayer(Layer):
    """bottoms x_1..x_k (each (N, ...)) and the selector s (last; shape (N,) or (N, 1, ...));
    tops: k blobs, top_t = x_t[s != 0] along axis 0, i.e. (S, ...) with S selected items.

    As in Caffe, the setup-time Reshape keeps the full N (the selector usually holds no
    data yet); from then on every Reshape reads the selector (a host sync) and sizes the
    tops to S, which may be 0. Backward copies each top diff to its kept items and zeroes
    the others; the selector gets no gradient (an error if one is asked for, never forced).
    Params: none.
    """
    min_bottom = 2
    min_top = 1

    def setup(self, bottom, top):
        if len(top) != len(bottom) - 1:
            raise self.error(f"needs one top per filtered bottom (bottoms minus the "
                             f"selector): {len(bottom)} bottoms, {len(top)} tops")
        self._first_reshape = True
        self._indices = None

    def allow_force_backward(self, bottom_index):
        return bottom_index != len(self.layer_param.bottom) - 1

    def reshape(self, bottom, top):
        sel = bottom[-1]
        if sel.num_axes == 0 or any(d != 1 for d in sel.shape[1:]):
            raise self.error(f"the selector (last bottom) must have shape (N,) or (N, 1, ...), "
                             f"got {sel.shape}")
        n = sel.shape[0]
        for i, b in enumerate(bottom[:-1]):
            if b.num_axes == 0 or b.shape[0] != n:
                raise self.error(f"bottom {i} of shape {b.shape} must have the selector's "
                                 f"first dimension {n} (selector shape {sel.shape})")
        keep = np.flatnonzero(asnumpy(sel.data).reshape(n) != 0)
        xp = get_array_module(sel.data)
        self._indices = xp.asarray(keep)
        num_top = len(keep)
        if self._first_reshape:
            num_top = n
            self._first_reshape = False
        for t, b in zip(top, bottom):
            t.reshape((num_top,) + b.shape[1:])

    def forward(self, bottom, top):
        s = len(self._indices)
        for t, b in zip(top, bottom):
            if s:
                t.data[:s] = b.data[self._indices]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[-1]:
            raise self.error("cannot back-propagate to its selector (the last bottom)")
        s = len(self._indices)
        for i, (t, b) in enumerate(zip(top, bottom)):
            if not propagate_down[i]:
                continue
            b.diff[...] = 0
            if s:
                b.diff[self._indices] = t.diff[:s]
