"""InfogainLoss: a multinomial logistic loss whose per-class terms are weighted by a matrix H."""
from ..backend import get_array_module, to_device
from ..errors import CaffeliteError
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .softmax import softmax_forward
from .softmax_loss import class_labels, normalizer

LOG_THRESHOLD = 1e-20   # Caffe's kLOG_THRESHOLD
_NORM = caffe_pb2.LossParameter


@register_layer("InfogainLoss", v1="INFOGAIN_LOSS")
class InfogainLossLayer(Layer):
    """bottoms: scores x, label (count = outer * inner, truncated to int, in [0, L)),
    optionally H (L x L values) as a third bottom. tops: loss () [, prob (shape of x)].
    p = softmax(x) along infogain_loss_param.axis; outer = count(0, axis), L = shape[axis],
    inner = count(axis + 1). H comes from the third bottom, or else from the BlobProto file
    infogain_loss_param.source (read once, in setup).
    loss = -sum_{kept n} sum_l H[label_n, l] ln(max(p_nl, 1e-20)) / normaliser; positions
    whose label equals loss_param.ignore_label are skipped.
    Normaliser (loss_param.normalization, default VALID; the legacy normalize is refused):
    FULL = outer * inner, VALID = #kept, BATCH_SIZE = outer, NONE = 1, then max(1, .).
    Backward, as Caffe 1.0's infogain_loss_layer.cpp (w = top[0].diff):
      dx_nl = (p_nl sum_l' H[label_n, l'] - H[label_n, l]) * w / normaliser, 0 if skipped.
    H gets no gradient; as in Caffe, the prob top's diff is not propagated.
    Params: infogain_loss_param {source, axis}; loss_param {ignore_label, normalization}."""
    min_bottom = 2
    max_bottom = 3
    min_top = 1
    max_top = 2
    auto_top_blobs = True
    is_loss = True

    def setup(self, bottom, top):
        lp = self.layer_param.loss_param
        if lp.HasField("normalize"):
            raise self.error("loss_param.normalize is deprecated for InfogainLoss: use "
                             "loss_param.normalization")
        self.mode = lp.normalization
        if self.mode not in (_NORM.FULL, _NORM.VALID, _NORM.BATCH_SIZE, _NORM.NONE):
            raise self.error(f"loss_param.normalization: unknown mode {self.mode}")
        self.has_ignore = lp.HasField("ignore_label")
        self.ignore_label = lp.ignore_label
        p = self.layer_param.infogain_loss_param
        self.axis_param = p.axis
        self.H_host, self._H = None, None
        if len(bottom) < 3:
            if not p.source:
                raise self.error("infogain_loss_param.source must name the infogain matrix "
                                 "file when there is no third bottom")
            self.H_host = self._read_matrix(p.source)

    def _read_matrix(self, source):
        from ..formats.blobproto import blobproto_to_array
        from ..formats.prototxt import read_binary
        try:
            return blobproto_to_array(read_binary(source, caffe_pb2.BlobProto()))
        except CaffeliteError as e:
            raise self.error(f"infogain_loss_param.source '{source}': {e}") from None

    def allow_force_backward(self, bottom_index):
        # Neither the label nor H can take a gradient (Caffe would abort on H).
        return bottom_index == 0

    def reshape(self, bottom, top):
        x, label = bottom[0], bottom[1]
        if x.num_axes == 0 or label.num_axes == 0 or x.shape[0] != label.shape[0]:
            raise self.error(f"the data and label should have the same first dimension: "
                             f"bottom shapes {x.shape} and {label.shape}")
        try:
            axis = x.canonical_axis(self.axis_param)
        except CaffeliteError as e:
            raise self.error(f"infogain_loss_param.axis: {e} (bottom shape {x.shape})") \
                from None
        outer, dim, inner = x.count_range(0, axis), x.shape[axis], x.count_range(axis + 1)
        if outer * inner != label.count:
            raise self.error(f"number of labels must match number of predictions: scores "
                             f"{x.shape} with infogain_loss_param.axis {self.axis_param} "
                             f"need {outer * inner} labels, label shape {label.shape} has "
                             f"{label.count}")
        if len(bottom) > 2:
            h_count, where = bottom[2].count, f"the third bottom has shape {bottom[2].shape}"
        else:
            h_count = self.H_host.size
            where = (f"infogain_loss_param.source "
                     f"'{self.layer_param.infogain_loss_param.source}' holds shape "
                     f"{self.H_host.shape}")
        if h_count != dim * dim:
            raise self.error(f"the infogain matrix H must be {dim}x{dim} for scores {x.shape} "
                             f"(axis {axis}), but {where}")
        self.view = (outer, dim, inner)
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape(x.shape)

    def _matrix(self, bottom):
        L = self.view[1]
        if len(bottom) > 2:
            return bottom[2].data.reshape(L, L)
        data = bottom[0].data
        xp = get_array_module(data)
        H = self._H
        if H is None or get_array_module(H) is not xp or H.dtype != data.dtype:
            H = self._H = to_device(self.H_host.astype(data.dtype).reshape(L, L), xp)
        return H

    def forward(self, bottom, top):
        outer, dim, inner = self.view
        x = bottom[0].data.reshape(self.view)
        xp = get_array_module(x)
        prob = softmax_forward(x)
        label, valid = class_labels(self, bottom, "infogain_loss_param.axis")
        H = self._matrix(bottom)
        rows = xp.moveaxis(H[label], 2, 1)          # (outer, L, inner): H[label_n, l]
        per_pos = (rows * xp.log(xp.maximum(prob, LOG_THRESHOLD))).sum(axis=1)
        per_pos = per_pos * valid
        self.norm = normalizer(xp, self.mode, outer, inner, valid.sum())
        top[0].data[...] = -per_pos.sum() / self.norm
        self.prob, self.label, self.valid = prob, label, valid
        if len(top) > 1:
            top[1].data.reshape(self.view)[...] = prob

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("cannot backpropagate to label inputs")
        if len(propagate_down) > 2 and propagate_down[2]:
            raise self.error("cannot backpropagate into the infogain matrix (bottom 2)")
        if not propagate_down[0]:
            return
        xp = get_array_module(self.prob)
        H = self._matrix(bottom)
        row_sums = H.sum(axis=1)[self.label]        # (outer, inner)
        rows = xp.moveaxis(H[self.label], 2, 1)     # (outer, L, inner)
        grad = self.prob * row_sums[:, None, :] - rows
        grad *= self.valid[:, None, :]
        grad *= top[0].diff / self.norm
        bottom[0].diff.reshape(self.view)[...] = grad
