"""Tile: repeat the bottom `tiles` times along `axis`."""
from ..layer import Layer, register_layer


@register_layer("Tile")
class TileLayer(Layer):
    """bottom x viewed as (outer, inner) with outer = count(0, axis), inner = count(axis);
    top (outer, tiles, inner), i.e. shape[axis] *= tiles: each outer slice is copied
    `tiles` times contiguously. Backward sums the copies.
    Params: tile_param {axis (may be negative), tiles (must be set and > 0)}.
    """
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.tile_param
        if not p.HasField("tiles") or p.tiles <= 0:
            raise self.error(f"tile_param.tiles must be set and positive "
                             f"(got {p.tiles if p.HasField('tiles') else 'unset'})")
        self.tiles = p.tiles

    def reshape(self, bottom, top):
        b = bottom[0]
        try:
            axis = b.canonical_axis(self.layer_param.tile_param.axis)
        except Exception as e:
            raise self.error(f"tile_param.axis: {e} (bottom shape {b.shape})")
        shape = list(b.shape)
        shape[axis] *= self.tiles
        top[0].reshape(shape)
        self.outer = b.count_range(0, axis)
        self.inner = b.count_range(axis)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.outer, 1, self.inner)
        top[0].data.reshape(self.outer, self.tiles, self.inner)[...] = x

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.outer, self.tiles, self.inner)
        bottom[0].diff.reshape(self.outer, self.inner)[...] = dy.sum(axis=1)
