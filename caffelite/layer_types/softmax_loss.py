"""SoftmaxWithLoss: multinomial logistic loss of the softmax of the scores."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .softmax import softmax_backward, softmax_forward, split_axis

FLT_MIN = float(np.finfo(np.float32).tiny)
_NORM = caffe_pb2.LossParameter


def normalization_mode(layer_param):
    """LossParameter.normalization, or the legacy ``normalize`` flag when only that is set."""
    lp = layer_param.loss_param
    if not lp.HasField("normalization") and lp.HasField("normalize"):
        return _NORM.VALID if lp.normalize else _NORM.BATCH_SIZE
    return lp.normalization


def normalizer(xp, mode, outer, inner, valid_count):
    """Caffe's get_normalizer, clamped to >= 1; VALID uses ``valid_count`` (a device scalar)."""
    if mode == _NORM.FULL:
        value = outer * inner
    elif mode == _NORM.VALID:
        return xp.maximum(valid_count, 1)
    elif mode == _NORM.BATCH_SIZE:
        value = outer
    elif mode == _NORM.NONE:
        value = 1
    else:
        raise ValueError(mode)
    return max(value, 1)


def class_labels(layer, bottom, axis_field):
    """The label bottom as classes (outer, inner), truncated as C's int cast, and the mask of
    the positions that count (label != ignore_label, when set); ignored positions read class
    0. A counted label outside [0, dim) is an error naming the layer, the scores' shape and
    ``axis_field``. ``layer`` has ``view`` (outer, dim, inner), ``has_ignore``,
    ``ignore_label`` and ``axis_param``."""
    outer, dim, inner = layer.view
    xp = get_array_module(bottom[0].data)
    label = bottom[1].data.reshape(outer, inner).astype(np.int64)
    valid = (label != layer.ignore_label) if layer.has_ignore \
        else xp.ones(label.shape, dtype=bool)
    bad = valid & ((label < 0) | (label >= dim))
    if bool(bad.any()):
        raise layer.error(f"label value {int(label[bad][0])} outside [0, {dim}) (scores "
                          f"shape {bottom[0].shape}, {axis_field} {layer.axis_param})")
    return xp.where(valid, label, 0), valid


@register_layer("SoftmaxWithLoss", v1="SOFTMAX_LOSS")
class SoftmaxWithLossLayer(Layer):
    """bottoms: scores x, labels l (float, truncated to int; count = outer * inner).
    tops: loss () [, prob (shape of x), default loss weights [1, 0]].
    p = softmax(x) along softmax_param.axis; outer = count(0, axis), inner = count(axis + 1).
    loss = -sum over non-ignored positions of ln(max(p[label], FLT_MIN)) / normaliser, with
    normaliser FULL = outer*inner, VALID = #non-ignored, BATCH_SIZE = outer, NONE = 1, then
    max(1, .). Backward: dx = (p - onehot(label)) * top[0].diff / normaliser, zero at ignored
    positions (plus the softmax backward of the prob top's diff, if it has one).
    Params: softmax_param.axis; loss_param {ignore_label, normalization, normalize}."""
    exact_num_bottom = 2
    min_top = 1
    max_top = 2
    is_loss = True
    auto_top_blobs = True          # LossLayer's: no top named -> an "(automatic)" loss top

    def setup(self, bottom, top):
        lp = self.layer_param.loss_param
        self.has_ignore = lp.HasField("ignore_label")
        self.ignore_label = lp.ignore_label
        self.mode = normalization_mode(self.layer_param)
        if self.mode not in (_NORM.FULL, _NORM.VALID, _NORM.BATCH_SIZE, _NORM.NONE):
            raise self.error(f"loss_param.normalization: unknown mode {self.mode}")
        self.axis_param = self.layer_param.softmax_param.axis

    def reshape(self, bottom, top):
        x, label = bottom
        if x.num_axes == 0 or label.num_axes == 0 or x.shape[0] != label.shape[0]:
            raise self.error(f"the data and label should have the same first dimension: "
                             f"bottom shapes {x.shape} and {label.shape}")
        _, outer, dim, inner = split_axis(self, x, self.axis_param)
        if outer * inner != label.count:
            raise self.error(f"number of labels must match number of predictions: scores "
                             f"{x.shape} with softmax_param.axis {self.axis_param} need "
                             f"{outer * inner} labels, label shape {label.shape} has "
                             f"{label.count}")
        self.view = (outer, dim, inner)
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape(x.shape)

    def forward(self, bottom, top):
        outer, dim, inner = self.view
        x = bottom[0].data.reshape(self.view)
        xp = get_array_module(x)
        prob = softmax_forward(x)
        label, valid = class_labels(self, bottom, "softmax_param.axis")
        p_label = xp.take_along_axis(prob, label[:, None, :], axis=1)[:, 0, :]
        logs = xp.log(xp.maximum(p_label, FLT_MIN)) * valid
        self.norm = normalizer(xp, self.mode, outer, inner, valid.sum())
        # 0 - sum, as Caffe's loss starts at 0: +0.0 (not -0.0) when every label is ignored
        top[0].data[...] = (0.0 - logs.sum()) / self.norm
        self.prob, self.label, self.valid = prob, label, valid
        if len(top) > 1:
            top[1].data.reshape(self.view)[...] = prob

    def backward(self, top, propagate_down, bottom):
        if len(propagate_down) > 1 and propagate_down[1]:
            raise self.error("cannot backpropagate to label inputs")
        if not propagate_down[0]:
            return
        xp = get_array_module(self.prob)
        dim = self.view[1]
        onehot = xp.arange(dim)[None, :, None] == self.label[:, None, :]
        grad = (self.prob - onehot) * self.valid[:, None, :]
        grad *= top[0].diff / self.norm
        if len(top) > 1:
            # A prob top with weight 0 and no consumer has a zero diff; one that feeds
            # another layer passes its gradient back through the softmax.
            grad += softmax_backward(self.prob, top[1].diff.reshape(self.view))
        bottom[0].diff.reshape(self.view)[...] = grad
