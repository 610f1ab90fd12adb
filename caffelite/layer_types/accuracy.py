"""Accuracy: the fraction of positions whose true class is within the top k scores."""
from ..backend import get_array_module
from ..layer import Layer, register_layer
from .softmax_loss import class_labels


@register_layer("Accuracy", v1="ACCURACY")
class AccuracyLayer(Layer):
    """bottoms: scores x viewed as (outer = count(0, axis), C = shape[axis],
    inner = count(axis + 1)); labels l (float, truncated to int; count = outer * inner).
    tops: accuracy () [, per-class accuracy (C,)].
    A position counts as correct when #{c : x_c >= x_label} <= top_k (the true class counts
    itself, so ties go against you). Positions whose label is ignore_label are skipped.
    accuracy = correct / counted (0 when nothing is counted); per-class value c =
    correct_c / #labels equal to c (0 when c never occurs). No backward.
    Params: accuracy_param {top_k, axis, ignore_label}."""
    exact_num_bottom = 2
    min_top = 1
    max_top = 2

    def setup(self, bottom, top):
        p = self.layer_param.accuracy_param
        self.top_k = p.top_k
        self.has_ignore = p.HasField("ignore_label")
        self.ignore_label = p.ignore_label
        self.axis_param = p.axis

    def reshape(self, bottom, top):
        x, label = bottom
        if label.count == 0 or self.top_k > x.count // label.count:
            raise self.error(f"accuracy_param.top_k ({self.top_k}) must be less than or equal "
                             f"to the number of classes (scores {x.shape}, labels "
                             f"{label.shape})")
        try:
            axis = x.canonical_axis(self.axis_param)
        except Exception as e:
            raise self.error(f"accuracy_param.axis: {e} (bottom shape {x.shape})") from None
        outer, dim, inner = x.count_range(0, axis), x.shape[axis], x.count_range(axis + 1)
        if outer * inner != label.count:
            raise self.error(f"number of labels must match number of predictions: scores "
                             f"{x.shape} with accuracy_param.axis {self.axis_param} need "
                             f"{outer * inner} labels, label shape {label.shape} has "
                             f"{label.count}")
        self.view = (outer, dim, inner)
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((dim,))

    def forward(self, bottom, top):
        outer, dim, inner = self.view
        x = bottom[0].data.reshape(self.view)
        xp = get_array_module(x)
        label, valid = class_labels(self, bottom, "accuracy_param.axis")
        true_score = xp.take_along_axis(x, label[:, None, :], axis=1)
        num_ge = (x >= true_score).sum(axis=1)
        correct = valid & (num_ge <= self.top_k)
        count = valid.sum()
        dtype = top[0].data.dtype
        top[0].data[...] = correct.sum().astype(dtype) / xp.maximum(count, 1).astype(dtype)
        if len(top) > 1:
            onehot = xp.arange(dim)[None, :, None] == label[:, None, :]
            seen = (onehot & valid[:, None, :]).sum(axis=(0, 2))
            hit = (onehot & correct[:, None, :]).sum(axis=(0, 2))
            top[1].data[...] = xp.where(seen > 0, hit.astype(dtype) /
                                        xp.maximum(seen, 1).astype(dtype), 0)

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise self.error("has no backward (Caffe: not implemented)")
