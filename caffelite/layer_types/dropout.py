"""Dropout: y = x * mask / (1 - ratio) in TRAIN, y = x in TEST.

bottom x -> top y, same shape (in place allowed). The layer's own phase decides the mode.
TRAIN: mask ~ Bernoulli(1 - ratio) per element, drawn on every forward from caffelite's host
random stream as float32 uniforms (so ``set_random_seed`` reproduces it on CPU and GPU); backward
dx = dy * mask / (1 - ratio) with the mask of the last forward. TEST: dx = dy.
Params: dropout_param.dropout_ratio in [0, 1).
"""
import numpy as np

from .. import backend
from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2


@register_layer("Dropout", v1="DROPOUT")
class DropoutLayer(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        self.ratio = float(self.layer_param.dropout_param.dropout_ratio)
        if not 0.0 <= self.ratio < 1.0:
            raise self.error(f"dropout_param.dropout_ratio must be in [0, 1), got {self.ratio}")
        self.scale = 1.0 / (1.0 - self.ratio)
        self.mask = None

    def reshape(self, bottom, top):
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    @property
    def training(self):
        return self.phase == caffe_pb2.TRAIN

    def forward(self, bottom, top):
        x = bottom[0].data
        if self.training:
            xp = get_array_module(x)
            # float32 draws on the host (no float64 array); the bool mask crosses to the
            # device once, 1 byte per element
            keep = backend.rng().random(x.shape, dtype=np.float32) < np.float32(1.0 - self.ratio)
            if self.mask is None or self.mask.shape != x.shape or self.mask.dtype != x.dtype \
                    or get_array_module(self.mask) is not xp:
                self.mask = xp.empty(x.shape, dtype=x.dtype)
            # mask already carries the scale: x * (mask * scale) equals (x * mask) * scale
            # exactly, since mask is 0 or 1
            xp.multiply(backend.to_device(keep, xp), x.dtype.type(self.scale), out=self.mask)
            xp.multiply(x, self.mask, out=top[0].data)
        elif top[0] is not bottom[0]:
            top[0].data[...] = x

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        if self.training:
            if self.mask is None or self.mask.shape != dy.shape:
                raise self.error(f"backward before forward (no dropout mask for top shape "
                                 f"{tuple(dy.shape)})")
            get_array_module(dy).multiply(dy, self.mask, out=bottom[0].diff)
        elif top[0] is not bottom[0]:
            bottom[0].diff[...] = dy
