"""SigmoidCrossEntropyLoss: cross-entropy between sigmoid(logits) and target probabilities."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .softmax_loss import normalizer

_NORM = caffe_pb2.LossParameter


@register_layer("SigmoidCrossEntropyLoss", v1="SIGMOID_CROSS_ENTROPY_LOSS")
class SigmoidCrossEntropyLossLayer(Layer):
    """bottoms: logits x, targets t (same count; shape[0] equal = N). top: loss, shape ().
    loss = -sum over kept elements of [x (t - 1{x>=0}) - ln(1 + exp(x - 2 x 1{x>=0}))]
    / normaliser, the overflow-free form of -[t ln s + (1 - t) ln(1 - s)], s = sigmoid(x).
    An element is skipped when int(t) (truncated) equals loss_param.ignore_label.
    Normaliser: loss_param.normalization if set, else the legacy normalize (true -> VALID,
    false -> BATCH_SIZE), else BATCH_SIZE (unlike SoftmaxWithLoss); FULL = N * count(1),
    VALID = #kept, BATCH_SIZE = N, NONE = 1, then max(1, .).
    Backward: dx = (sigmoid(x) - t) * w / normaliser, 0 at skipped elements.
    Params: loss_param {ignore_label, normalization, normalize}."""
    exact_num_bottom = 2
    exact_num_top = 1
    auto_top_blobs = True
    is_loss = True

    def setup(self, bottom, top):
        lp = self.layer_param.loss_param
        self.has_ignore = lp.HasField("ignore_label")
        self.ignore_label = lp.ignore_label
        if lp.HasField("normalization"):
            self.mode = lp.normalization
        elif lp.HasField("normalize"):
            self.mode = _NORM.VALID if lp.normalize else _NORM.BATCH_SIZE
        else:
            self.mode = _NORM.BATCH_SIZE
        if self.mode not in (_NORM.FULL, _NORM.VALID, _NORM.BATCH_SIZE, _NORM.NONE):
            raise self.error(f"loss_param.normalization: unknown mode {self.mode}")

    def reshape(self, bottom, top):
        x, t = bottom
        if x.num_axes == 0 or t.num_axes == 0 or x.shape[0] != t.shape[0]:
            raise self.error(f"the data and label should have the same first dimension: "
                             f"bottom shapes {x.shape} and {t.shape}")
        if x.count != t.count:
            raise self.error(f"inputs must have the same count: bottom shapes {x.shape} and "
                             f"{t.shape}")
        self.outer, self.inner = x.shape[0], x.count_range(1)
        top[0].reshape(())

    def _kept(self, t):
        if not self.has_ignore:
            return None
        return t.astype(np.int64) != self.ignore_label      # int() truncates, as C's cast

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        t = bottom[1].data.reshape(x.shape)
        pos = (x >= 0).astype(x.dtype)
        # exp(x - 2x[x>=0]) = exp(-|x|) <= 1, so neither term can overflow.
        terms = x * (t - pos) - xp.log1p(xp.exp(x - 2 * x * pos))
        kept = self._kept(t)
        mode = self.mode
        if kept is None:
            # Every element counts, so VALID is FULL; staying on host ints avoids a sync.
            total, valid_count = terms.sum(), self.outer * self.inner
            mode = _NORM.FULL if mode == _NORM.VALID else mode
        else:
            total, valid_count = (terms * kept).sum(), kept.sum()
        self.norm = normalizer(xp, mode, self.outer, self.inner, valid_count)
        top[0].data[...] = -total / self.norm

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("cannot backpropagate to label inputs")
        if not propagate_down[0]:
            return
        x = bottom[0].data
        xp = get_array_module(x)
        t = bottom[1].data.reshape(x.shape)
        # The tanh form of the sigmoid never overflows (Caffe 1.0's Sigmoid uses it too).
        grad = 0.5 * xp.tanh(0.5 * x) + 0.5 - t
        kept = self._kept(t)
        if kept is not None:
            grad *= kept
        grad *= top[0].diff / self.norm
        bottom[0].diff[...] = grad
