"""Flatten: merge axes [axis, end_axis] into one; the top aliases the bottom's memory."""
from ..layer import Layer, register_layer


@register_layer("Flatten", v1="FLATTEN")
class FlattenLayer(Layer):
    """bottom x of shape (d_0..d_{n-1}) -> top of shape
    d_0..d_{axis-1}, prod(d_axis..d_end_axis), d_{end_axis+1}..d_{n-1}
    (the default axis 1, end_axis -1 gives (N, C*H*W)). The top shares the bottom's data and
    diff, so forward and backward move nothing. Not in place.
    Params: flatten_param {axis, end_axis} (negative values count from the end)."""
    exact_num_bottom = 1
    exact_num_top = 1

    def _axis(self, blob, field):
        value = getattr(self.layer_param.flatten_param, field)
        n = blob.num_axes
        if not -n <= value < n:
            raise self.error(f"flatten_param.{field} {value} out of range for bottom shape "
                             f"{blob.shape}")
        return value % n

    def reshape(self, bottom, top):
        x = bottom[0]
        if top[0] is x:
            raise self.error("does not allow in-place computation")
        start, end = self._axis(x, "axis"), self._axis(x, "end_axis")
        if end + 1 < start:
            raise self.error(f"flatten_param.end_axis ({end}) comes before axis ({start}) "
                             f"for bottom shape {x.shape}")
        shape = x.shape[:start] + (x.count_range(start, end + 1),) + x.shape[end + 1:]
        top[0].reshape(shape)
        top[0].share_data(x)
        top[0].share_diff(x)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
