"""ArgMax: indices (and optionally values) of the top_k largest entries."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer("ArgMax", v1="ARGMAX")
class ArgMaxLayer(Layer):
    """Order: descending by (value, index), so ties go to the larger index (Caffe sorts
    (value, index) pairs with std::greater).

    Without argmax_param.axis: per item n over the flattened count(1) values; top has
    max(num_axes, 3) axes, all 1 except (N, 1, top_k) -- (N, 2, top_k) with out_max_val,
    [n, 0, :] the indices and [n, 1, :] the values.
    With axis: top = bottom.shape with shape[axis] = top_k, holding the indices, or only
    the values if out_max_val.
    Indices are stored as floats. No backward.
    Params: argmax_param {out_max_val, top_k, axis}.
    """
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.argmax_param
        if p.top_k < 1:
            raise self.error(f"argmax_param.top_k must be at least 1, got {p.top_k}")
        self.top_k = p.top_k
        self.out_max_val = p.out_max_val
        self.has_axis = p.HasField("axis")

    def reshape(self, bottom, top):
        b = bottom[0]
        if self.has_axis:
            try:
                self.axis = b.canonical_axis(self.layer_param.argmax_param.axis)
            except Exception as e:
                raise self.error(f"argmax_param.axis: {e} (bottom shape {b.shape})")
            if b.num_axes == 0:
                raise self.error(f"argmax_param.axis needs a bottom with at least one axis, "
                                 f"got shape {b.shape}")
            dim = b.shape[self.axis]
            shape = list(b.shape)
            shape[self.axis] = self.top_k
        else:
            if b.num_axes == 0:
                raise self.error(f"needs a bottom with at least one axis, got shape {b.shape}")
            dim = b.count_range(1)
            shape = [1] * max(b.num_axes, 3)
            shape[0] = b.shape[0]
            shape[1] = 2 if self.out_max_val else 1
            shape[2] = self.top_k
        if self.top_k > dim:
            where = (f"axis {self.axis}" if self.has_axis else "the flattened item (count(1))")
            raise self.error(f"argmax_param.top_k ({self.top_k}) must not exceed the size of "
                             f"{where}, which is {dim} for bottom shape {b.shape}")
        self.dim = dim
        top[0].reshape(shape)

    def _top_k(self, x):
        """Indices and values of the top_k largest entries along the last axis."""
        xp = get_array_module(x)
        # A stable ascending sort keeps equal values in index order; reversing it gives
        # descending values with the larger index first among ties.
        kind = {"kind": "stable"} if xp is np else {}   # CuPy's sort is always stable
        order = xp.argsort(x, axis=-1, **kind)[..., ::-1][..., :self.top_k]
        return order, xp.take_along_axis(x, order, axis=-1)

    def forward(self, bottom, top):
        x = bottom[0].data
        if x.size == 0:
            return
        dtype = x.dtype
        if self.has_axis:
            xp = get_array_module(x)
            idx, val = self._top_k(xp.moveaxis(x, self.axis, -1))
            out = val if self.out_max_val else idx.astype(dtype)
            top[0].data[...] = xp.moveaxis(out, -1, self.axis)
            return
        n = x.shape[0]
        idx, val = self._top_k(x.reshape(n, self.dim))
        if self.out_max_val:
            y = top[0].data.reshape(n, 2, self.top_k)
            y[:, 0] = idx
            y[:, 1] = val
        else:
            top[0].data.reshape(n, self.top_k)[...] = idx
