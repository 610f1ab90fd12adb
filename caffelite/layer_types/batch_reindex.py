"""BatchReindex: select, reorder or repeat the items of a batch, top[i] = x[idx[i]]."""
from .. import backend
from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer("BatchReindex")
class BatchReindexLayer(Layer):
    """bottoms: x (N, ...) and idx (M,) holding float indices (truncated to int, as Caffe's
    static_cast) with 0 <= idx < N; top: (M, ...).
    Backward: dx = 0, then dx[idx[i]] += dy[i] (repeated indices accumulate); idx gets no
    gradient (an error if one is asked for, never forced).
    Params: none.
    """
    exact_num_bottom = 2
    exact_num_top = 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def reshape(self, bottom, top):
        x, idx = bottom
        if idx.num_axes != 1:
            raise self.error(f"the index bottom must have exactly one axis, got shape "
                             f"{idx.shape} (data shape {x.shape})")
        if x.num_axes == 0:
            raise self.error("the data bottom must have at least one axis, got shape ()")
        top[0].reshape((idx.shape[0],) + x.shape[1:])

    def _indices(self, bottom):
        x, idx = bottom
        v = idx.data
        xp = get_array_module(v)
        ok = (v >= 0) & (v < x.shape[0])                # False for NaN too
        if not bool(ok.all()):
            bad = backend.asnumpy(v)[~backend.asnumpy(ok)]
            raise self.error(f"indices must lie in [0, {x.shape[0]}) for a data bottom of "
                             f"shape {x.shape}; got {bad[:5].tolist()}")
        return v.astype(xp.int64)

    def forward(self, bottom, top):
        idx = self._indices(bottom)
        if top[0].count:
            top[0].data[...] = bottom[0].data[idx]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("cannot back-propagate to its index bottom (bottom 1)")
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        dx[...] = 0
        if top[0].count:
            xp = get_array_module(dx)
            backend.scatter_add(xp, dx, self._indices(bottom), top[0].diff)
