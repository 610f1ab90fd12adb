"""HingeLoss: one-vs-all hinge (L1) or squared hinge (L2) loss on class scores."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

_NORM = caffe_pb2.HingeLossParameter


@register_layer("HingeLoss", v1="HINGE_LOSS")
class HingeLossLayer(Layer):
    """bottoms: scores s (N, ...) viewed as (N, D = count / N), label (N values, truncated
    to int, in [0, D)). top: loss, shape ().
    sign_nj = -1 where j == label_n, else +1; t_nj = max(0, 1 + sign_nj s_nj).
    L1: loss = sum(t) / N; L2: loss = sum(t^2) / N.
    Backward (w = top[0].diff): L1 ds = sign * 1{t > 0} * w / N; L2 ds = 2 t sign w / N.
    Params: hinge_loss_param.norm (L1 or L2)."""
    exact_num_bottom = 2
    exact_num_top = 1
    auto_top_blobs = True
    is_loss = True

    def setup(self, bottom, top):
        self.norm = self.layer_param.hinge_loss_param.norm
        if self.norm not in (_NORM.L1, _NORM.L2):
            raise self.error(f"hinge_loss_param.norm: unknown norm {self.norm}")

    def reshape(self, bottom, top):
        s, label = bottom
        if s.num_axes == 0 or label.num_axes == 0 or s.shape[0] != label.shape[0]:
            raise self.error(f"the data and label should have the same first dimension: "
                             f"bottom shapes {s.shape} and {label.shape}")
        if label.count != s.shape[0]:
            raise self.error(f"needs one label per item: scores {s.shape}, label "
                             f"{label.shape}")
        self.num = s.shape[0]
        self.dim = s.count // self.num if self.num else 0
        top[0].reshape(())

    def forward(self, bottom, top):
        n, d = self.num, self.dim
        s = bottom[0].data.reshape(n, d)
        xp = get_array_module(s)
        label = bottom[1].data.reshape(n).astype(np.int64)  # truncates, as C's cast
        bad = (label < 0) | (label >= d)
        if bool(bad.any()):
            raise self.error(f"label value {int(label[bad][0])} outside [0, {d}) (scores "
                             f"shape {bottom[0].shape})")
        self.sign = 1 - 2 * (xp.arange(d)[None, :] == label[:, None]).astype(s.dtype)
        self.t = xp.maximum(1 + self.sign * s, 0)
        if self.norm == _NORM.L1:
            top[0].data[...] = self.t.sum() / n
        else:
            top[0].data[...] = xp.vdot(self.t, self.t) / n

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("cannot backpropagate to label inputs")
        if not propagate_down[0]:
            return
        if self.norm == _NORM.L1:
            grad = self.sign * (self.t > 0)
        else:
            grad = 2 * self.t * self.sign
        grad *= top[0].diff / self.num
        bottom[0].diff.reshape(self.num, self.dim)[...] = grad
