"""Reshape: give the bottom a new shape without copying; the top aliases its memory."""
from ..layer import Layer, register_layer


@register_layer("Reshape")
class ReshapeLayer(Layer):
    """bottom x -> top with x's axes [axis, axis + num_axes) replaced by reshape_param.shape.

    In shape.dim, 0 copies the bottom dim at the same position (counted from ``axis``) and -1
    is inferred so that the count is unchanged (at most one -1). A negative axis counts so
    that -1 means "after the last axis"; num_axes -1 means "to the end". The top shares the
    bottom's data and diff. Not in place.
    Params: reshape_param {shape, axis, num_axes}."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        dims = [int(d) for d in self.layer_param.reshape_param.shape.dim]
        self.dims = dims
        self.copy_axes = [i for i, d in enumerate(dims) if d == 0]
        inferred = [i for i, d in enumerate(dims) if d == -1]
        if len(inferred) > 1:
            raise self.error(f"reshape_param.shape {dims} contains more than one -1 "
                             f"(at most one dimension can be inferred)")
        if any(d < -1 for d in dims):
            raise self.error(f"reshape_param.shape {dims} has a dimension below -1")
        self.inferred_axis = inferred[0] if inferred else None

    def reshape(self, bottom, top):
        x = bottom[0]
        if top[0] is x:
            raise self.error("does not allow in-place computation")
        p = self.layer_param.reshape_param
        n = x.num_axes
        start = p.axis if p.axis >= 0 else n + p.axis + 1
        if not 0 <= start <= n:
            raise self.error(f"reshape_param.axis {p.axis} out of range for bottom shape "
                             f"{x.shape}")
        if p.num_axes < -1:
            raise self.error(f"reshape_param.num_axes {p.num_axes} must be >= 0, or -1 "
                             f"for all")
        end = n if p.num_axes == -1 else start + p.num_axes
        if end > n:
            raise self.error(f"reshape_param.axis + num_axes = {end} out of range for bottom "
                             f"shape {x.shape}")
        new = list(self.dims)
        for i in self.copy_axes:
            if start + i >= n:
                raise self.error(f"reshape_param.shape {self.dims} has a 0 at position {i} "
                                 f"but bottom shape {x.shape} has no axis {start + i} to copy")
            new[i] = x.shape[start + i]
        if self.inferred_axis is not None:
            known = x.count_range(0, start) * x.count_range(end)
            for i, d in enumerate(new):
                if i != self.inferred_axis:
                    known *= d
            if known == 0 or x.count % known:
                raise self.error(f"cannot infer the -1 in reshape_param.shape {self.dims}: "
                                 f"bottom shape {x.shape} (count {x.count}) is not divisible "
                                 f"by the other dimensions (product {known})")
            new[self.inferred_axis] = x.count // known
        shape = x.shape[:start] + tuple(new) + x.shape[end:]
        count = 1
        for d in shape:
            count *= d
        if count != x.count:
            raise self.error(f"output count must match input count: bottom shape {x.shape} "
                             f"(count {x.count}) cannot become {shape} (count {count})")
        top[0].reshape(shape)
        top[0].share_data(x)
        top[0].share_diff(x)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
