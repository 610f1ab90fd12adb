"""Slice: cut one bottom into k >= 1 tops along one axis."""
from ..layer import Layer, register_layer
from .concat import axis_from_params, axis_slices


@register_layer("Slice", v1="SLICE")
class SliceLayer(Layer):
    """bottom x -> tops y_0..y_{k-1}, consecutive pieces of x along ``axis``.

    slice_point holds the k-1 strictly increasing cut positions (the first must be > 0);
    without it the axis is split into k equal parts, which must divide it evenly. Backward
    writes each top's diff back into its piece of dx. With a single top the top aliases the
    bottom's data and diff.
    Params: slice_param {axis (default 1, negative counts from the end), slice_dim
    (deprecated alias; not together with axis), slice_point}."""
    exact_num_bottom = 1
    min_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.slice_param
        if p.HasField("axis") and p.HasField("slice_dim"):
            raise self.error("slice_param: give either axis or slice_dim, not both")
        self.slice_points = [int(s) for s in p.slice_point]
        if self.slice_points and len(self.slice_points) != len(top) - 1:
            raise self.error(f"slice_param.slice_point must be given once per top minus one "
                             f"({len(top) - 1} for {len(top)} tops), got "
                             f"{len(self.slice_points)}")
        prev = 0
        for s in self.slice_points:
            if s <= prev:
                raise self.error(f"slice_param.slice_point {self.slice_points} must be "
                                 f"strictly increasing and start above 0")
            prev = s

    def reshape(self, bottom, top):
        x = bottom[0]
        if x.num_axes == 0:
            raise self.error(f"cannot slice a 0-axis blob (bottom shape {x.shape})")
        axis = axis_from_params(self, x, self.layer_param.slice_param, "axis", "slice_dim")
        dim = x.shape[axis]
        if self.slice_points:
            if len(top) > dim or self.slice_points[-1] > dim:
                raise self.error(f"slice_param.slice_point {self.slice_points} does not fit "
                                 f"axis {axis} of size {dim} (bottom shape {x.shape})")
            cuts = [0] + self.slice_points + [dim]
            sizes = [b - a for a, b in zip(cuts[:-1], cuts[1:])]
        else:
            if dim % len(top):
                raise self.error(f"{len(top)} tops do not evenly divide axis {axis} of size "
                                 f"{dim} (bottom shape {x.shape}); set slice_param.slice_point")
            sizes = [dim // len(top)] * len(top)
        self.axis = axis
        self.sizes = sizes
        for t, n in zip(top, sizes):
            if t is x and len(top) > 1:
                raise self.error("does not allow in-place computation with several tops")
            shape = list(x.shape)
            shape[axis] = n
            t.reshape(shape)
        if len(top) == 1:
            top[0].share_data(x)
            top[0].share_diff(x)

    def forward(self, bottom, top):
        if len(top) == 1:
            return
        x = bottom[0].data
        offset = 0
        for t, n in zip(top, self.sizes):
            t.data[...] = x[axis_slices(self.axis, offset, offset + n)]
            offset += n

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0] or len(top) == 1:
            return
        dx = bottom[0].diff
        offset = 0
        for t, n in zip(top, self.sizes):
            dx[axis_slices(self.axis, offset, offset + n)] = t.diff
            offset += n
