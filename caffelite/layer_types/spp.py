"""SPP (spatial pyramid pooling): pool the whole image into 1, 2x2, 4x4, ... bins.

bottom (N, C, H, W) -> top (N, C * sum_l bins_l^2) for pyramid_height > 1, or (N, C, 1, 1) for
pyramid_height 1 (a single pooling, not flattened).
Level l = 0 .. pyramid_height-1 pools with bins = 2^l and, per axis,
    kernel = ceil(H / bins), pad = (kernel * bins - H + 1) // 2, stride = kernel,
using a Pooling layer (MAX, AVE or STOCHASTIC); each level's (N, C, PH, PW) output is flattened
to (N, C*PH*PW) and the levels are concatenated along axis 1 in order. Backward sums the levels'
bottom gradients. The levels are rebuilt whenever H or W changes.
As in Caffe, the inner Pooling layers run in the TRAIN phase whatever the net's phase (Caffe
builds them from a fresh LayerParameter), which only matters for STOCHASTIC: it samples.
Params: spp_param {pyramid_height (>= 1), pool}. engine is ignored.
"""
import math

from ..blob import Blob
from ..errors import LayerError
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .pooling import PoolingLayer

_POOL = {caffe_pb2.SPPParameter.MAX: caffe_pb2.PoolingParameter.MAX,
         caffe_pb2.SPPParameter.AVE: caffe_pb2.PoolingParameter.AVE,
         caffe_pb2.SPPParameter.STOCHASTIC: caffe_pb2.PoolingParameter.STOCHASTIC}


def level_geometry(level, h, w):
    """(kernel, pad) as (h, w) pairs of pyramid level ``level``; stride = kernel."""
    bins = 2 ** level
    kernel = tuple(int(math.ceil(s / bins)) for s in (h, w))
    pad = tuple((k * bins - s + 1) // 2 for k, s in zip(kernel, (h, w)))
    return kernel, pad


@register_layer("SPP")
class SPPLayer(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.spp_param
        self.height = int(p.pyramid_height)
        if self.height < 1:
            raise self.error(f"spp_param.pyramid_height must be set and at least 1, got "
                             f"{self.height}")
        if p.pool not in _POOL:
            raise self.error(f"spp_param.pool: unknown pooling method {p.pool}")
        self.pool = _POOL[p.pool]
        self.hw = None

    def _level_param(self, level, h, w):
        (kh, kw), (ph, pw) = level_geometry(level, h, w)
        lp = caffe_pb2.LayerParameter(name=f"{self.name}/level{level}", type="Pooling",
                                      phase=caffe_pb2.TRAIN)
        pp = lp.pooling_param
        pp.pool = self.pool
        pp.kernel_h, pp.kernel_w = kh, kw
        pp.stride_h, pp.stride_w = kh, kw
        pp.pad_h, pp.pad_w = ph, pw
        return lp

    def _build_levels(self, bottom, top):
        x = bottom[0]
        h, w = x.shape[2:]
        self.levels, self.level_tops = [], []
        for level in range(self.height):
            layer = PoolingLayer(self._level_param(level, h, w))
            out = top[0] if self.height == 1 else Blob((), dtype=x.dtype, xp=x.xp)
            try:
                layer.SetUp([x], [out])
            except LayerError as e:
                raise self.error(f"pyramid level {level} ({2 ** level} bins per side) cannot "
                                 f"pool bottom shape {x.shape}: {e}") from None
            self.levels.append(layer)
            self.level_tops.append(out)
        # Each level writes its bottom gradient here before it is summed into bottom[0].
        self.scratch = Blob(x.shape, dtype=x.dtype, xp=x.xp)
        self.hw = (h, w)

    def reshape(self, bottom, top):
        if top[0] is bottom[0]:
            raise self.error("does not allow in-place computation")
        shape = tuple(bottom[0].shape)
        if len(shape) != 4:
            raise self.error(f"input must have 4 axes, corresponding to (num, channels, "
                             f"height, width); bottom shape is {shape}")
        if min(shape[2:]) <= 0:
            raise self.error(f"input spatial dimensions cannot be zero: bottom shape {shape}")
        if self.hw != shape[2:]:
            self._build_levels(bottom, top)
        if self.height == 1:
            self.levels[0].reshape(bottom, top)
            return
        for layer, out in zip(self.levels, self.level_tops):
            layer.reshape(bottom, [out])
        self.sizes = [out.count_range(1) for out in self.level_tops]
        top[0].reshape(shape[0], sum(self.sizes))

    def forward(self, bottom, top):
        if self.height == 1:
            self.levels[0].forward(bottom, top)
            return
        n = bottom[0].shape[0]
        start = 0
        for layer, out, size in zip(self.levels, self.level_tops, self.sizes):
            layer.forward(bottom, [out])
            top[0].data[:, start:start + size] = out.data.reshape(n, size)
            start += size

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.height == 1:
            self.levels[0].backward(top, propagate_down, bottom)
            return
        self.scratch.reshape(bottom[0].shape)
        start = 0
        for i, (layer, out, size) in enumerate(zip(self.levels, self.level_tops, self.sizes)):
            out.diff[...] = top[0].diff[:, start:start + size].reshape(out.shape)
            start += size
            if i == 0:
                layer.backward([out], [True], bottom)
            else:
                layer.backward([out], [True], [self.scratch])
                bottom[0].diff[...] += self.scratch.diff
