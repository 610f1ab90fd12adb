"""Concat: join k >= 1 bottoms along one axis."""
from ..layer import Layer, register_layer


def axis_from_params(layer, blob, param, axis_field, dim_field):
    """The canonical axis of a Concat/Slice param: ``axis`` (negative allowed) or the
    deprecated unsigned ``*_dim`` field (no negative indexing), never both."""
    if param.HasField(dim_field):
        axis = getattr(param, dim_field)
        if axis >= blob.num_axes:
            raise layer.error(f"{layer.layer_param.type.lower()}_param.{dim_field} {axis} out "
                              f"of range for bottom shape {blob.shape}")
        return axis
    axis = getattr(param, axis_field)
    if not -blob.num_axes <= axis < blob.num_axes:
        raise layer.error(f"{layer.layer_param.type.lower()}_param.{axis_field} {axis} out "
                          f"of range for bottom shape {blob.shape}")
    return axis % blob.num_axes


def axis_slices(axis, start, stop):
    return (slice(None),) * axis + (slice(start, stop),)


@register_layer("Concat", v1="CONCAT")
class ConcatLayer(Layer):
    """bottoms x_i whose shapes agree except at ``axis`` -> top y with
    y.shape[axis] = sum_i x_i.shape[axis]. Backward hands each bottom its slice of dy.
    With a single bottom the top aliases the bottom's data and diff (no copies).
    Params: concat_param {axis (default 1, negative counts from the end), concat_dim
    (deprecated alias; not together with axis)}."""
    min_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.concat_param
        if p.HasField("axis") and p.HasField("concat_dim"):
            raise self.error("concat_param: give either axis or concat_dim, not both")

    def reshape(self, bottom, top):
        p = self.layer_param.concat_param
        first = bottom[0]
        if first.num_axes == 0:
            raise self.error(f"cannot concatenate 0-axis blobs (bottom 0 has shape "
                             f"{first.shape})")
        axis = axis_from_params(self, first, p, "axis", "concat_dim")
        shape = list(first.shape)
        for i, b in enumerate(bottom[1:], 1):
            ok = b.num_axes == first.num_axes and all(
                d == e for j, (d, e) in enumerate(zip(b.shape, first.shape)) if j != axis)
            if not ok:
                raise self.error(f"all bottoms must have the same shape except at concat "
                                 f"axis {axis}: bottom 0 has shape {first.shape}, bottom {i} "
                                 f"has shape {b.shape}")
            shape[axis] += b.shape[axis]
        self.axis = axis
        top[0].reshape(shape)
        if len(bottom) == 1:
            top[0].share_data(first)
            top[0].share_diff(first)

    def forward(self, bottom, top):
        if len(bottom) == 1:
            return
        y = top[0].data
        offset = 0
        for b in bottom:
            n = b.shape[self.axis]
            y[axis_slices(self.axis, offset, offset + n)] = b.data
            offset += n

    def backward(self, top, propagate_down, bottom):
        if len(bottom) == 1:
            return
        dy = top[0].diff
        offset = 0
        for i, b in enumerate(bottom):
            n = b.shape[self.axis]
            if propagate_down[i]:
                b.diff[...] = dy[axis_slices(self.axis, offset, offset + n)]
            offset += n
