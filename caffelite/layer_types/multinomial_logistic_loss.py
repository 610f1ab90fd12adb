"""MultinomialLogisticLoss: negative log-likelihood of given class probabilities."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer

LOG_THRESHOLD = 1e-20   # Caffe's kLOG_THRESHOLD: keeps ln(0) finite


@register_layer("MultinomialLogisticLoss", v1="MULTINOMIAL_LOGISTIC_LOSS")
class MultinomialLogisticLossLayer(Layer):
    """bottoms: probabilities p (N, ...) viewed as (N, D = count / N), label (N values,
    truncated to int, in [0, D)). top: loss, shape ().
    loss = -sum_n ln(max(p[n, label_n], 1e-20)) / N.
    Backward (w = top[0].diff): dp[n, label_n] = -w / (N max(p[n, label_n], 1e-20)), 0
    elsewhere. Params: none besides loss_weight."""
    exact_num_bottom = 2
    exact_num_top = 1
    auto_top_blobs = True
    is_loss = True

    def reshape(self, bottom, top):
        p, label = bottom
        if p.num_axes == 0 or label.num_axes == 0 or p.shape[0] != label.shape[0]:
            raise self.error(f"the data and label should have the same first dimension: "
                             f"bottom shapes {p.shape} and {label.shape}")
        if label.count != p.shape[0]:
            raise self.error(f"needs one label per item: probabilities {p.shape}, label "
                             f"{label.shape}")
        self.num = p.shape[0]
        self.dim = p.count // self.num if self.num else 0
        top[0].reshape(())

    def forward(self, bottom, top):
        n, d = self.num, self.dim
        p = bottom[0].data.reshape(n, d)
        xp = get_array_module(p)
        label = bottom[1].data.reshape(n).astype(np.int64)  # truncates, as C's cast
        bad = (label < 0) | (label >= d)
        if bool(bad.any()):
            raise self.error(f"label value {int(label[bad][0])} outside [0, {d}) "
                             f"(probabilities shape {bottom[0].shape})")
        self.rows = xp.arange(n)
        self.label = label
        self.p_label = xp.maximum(p[self.rows, label], LOG_THRESHOLD)
        top[0].data[...] = -xp.log(self.p_label).sum() / n

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("cannot backpropagate to label inputs")
        if not propagate_down[0]:
            return
        diff = bottom[0].diff.reshape(self.num, self.dim)
        diff[...] = 0
        diff[self.rows, self.label] = -(top[0].diff / self.num) / self.p_label
