"""ContrastiveLoss: pulls similar pairs together and pushes dissimilar ones past a margin."""
import numpy as np

from ..backend import get_array_module
from ..layer import Layer, register_layer


def _legacy_dims(blob):
    """(num, channels, height, width) as Caffe's legacy accessors (None past 4 axes)."""
    if blob.num_axes > 4 or blob.num_axes == 0:
        return None
    return (blob.num, blob.channels, blob.height, blob.width)


@register_layer("ContrastiveLoss", v1="CONTRASTIVE_LOSS")
class ContrastiveLossLayer(Layer):
    """bottoms: a (N, C[, 1, 1]), b (N, C[, 1, 1]), sim (N[, 1, 1, 1]). top: loss, shape ().
    d_n^2 = ||a_n - b_n||^2; a pair is similar when int(sim_n) != 0 (truncated).
    loss = sum_n [similar ? d^2 : max(margin - d, 0)^2] / (2N)
    (legacy_version: the dissimilar term is max(margin - d^2, 0)).
    Backward (w = top[0].diff), da = -db:
      similar:    da = w/N (a - b)
      dissimilar: da = -w/N (margin - d)/(d + 1e-4) (a - b) when margin - d > 0, else 0
      legacy:     da = -w/N (a - b) when margin - d^2 > 0, else 0
    The 1e-4 in the denominator is Caffe's (it keeps d = 0 finite), so the gradient is not
    exactly the derivative of the loss. sim never gets a gradient (nor force_backward).
    Params: contrastive_loss_param {margin, legacy_version}."""
    exact_num_bottom = 3
    exact_num_top = 1
    auto_top_blobs = True
    is_loss = True

    def setup(self, bottom, top):
        p = self.layer_param.contrastive_loss_param
        self.margin = float(p.margin)
        self.legacy = p.legacy_version

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def reshape(self, bottom, top):
        a, b, sim = bottom
        shapes = f"bottom shapes {a.shape}, {b.shape}, {sim.shape}"
        da, db, ds = _legacy_dims(a), _legacy_dims(b), _legacy_dims(sim)
        if da is None or db is None or ds is None:
            raise self.error(f"inputs need 1 to 4 axes: {shapes}")
        if da[0] != db[0] or da[1] != db[1]:
            raise self.error(f"the two feature inputs need the same num and channels: "
                             f"{shapes}")
        if da[2:] != (1, 1) or db[2:] != (1, 1):
            raise self.error(f"feature inputs must have height and width 1: {shapes}")
        if ds[0] != da[0] or ds[1:] != (1, 1, 1):
            raise self.error(f"the similarity input must hold one value per pair "
                             f"(shape ({da[0]},) or ({da[0]}, 1, 1, 1)): {shapes}")
        self.num, self.channels = da[0], da[1]
        top[0].reshape(())

    def forward(self, bottom, top):
        n, c = self.num, self.channels
        a = bottom[0].data.reshape(n, c)
        xp = get_array_module(a)
        self.diff = a - bottom[1].data.reshape(n, c)
        self.dist_sq = (self.diff * self.diff).sum(axis=1)
        self.similar = bottom[2].data.reshape(n).astype(np.int64) != 0
        if self.legacy:
            dissimilar = xp.maximum(self.margin - self.dist_sq, 0)
        else:
            gap = xp.maximum(self.margin - xp.sqrt(self.dist_sq), 0)
            dissimilar = gap * gap
        per_pair = xp.where(self.similar, self.dist_sq, dissimilar)
        top[0].data[...] = per_pair.sum() / (2 * n)

    def backward(self, top, propagate_down, bottom):
        # Caffe never writes sim's diff, even when asked: it is left as it was.
        if not (propagate_down[0] or propagate_down[1]):
            return
        xp = get_array_module(self.diff)
        if self.legacy:
            mdist = self.margin - self.dist_sq
            push = -xp.ones_like(mdist)
        else:
            dist = xp.sqrt(self.dist_sq)
            mdist = self.margin - dist
            push = -mdist / (dist + 1e-4)
        similar = self.similar.astype(push.dtype)
        coef = similar + (1 - similar) * (mdist > 0) * push
        base = coef[:, None] * self.diff
        scale = top[0].diff / self.num
        for i, sign in ((0, 1), (1, -1)):
            if propagate_down[i]:
                bottom[i].diff[...] = (base * (sign * scale)).reshape(bottom[i].shape)
