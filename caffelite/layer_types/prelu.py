"""PReLU: y = max(x, 0) + a_c * min(x, 0) with a learned slope per channel."""
from ..backend import get_array_module
from ..fillers import constant_filler, fill
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("PReLU")
class PReLULayer(NeuronLayer):
    """bottom x (N, C, ...) with at least 2 axes -> top y, same shape (in place allowed).

    blobs: a, shape (C,) with C = x.shape[1], or () if channel_shared (one slope for all).
    dx = dy * ((x > 0) + a_c (x <= 0));  da_c += sum over n and the trailing axes of
    dy * x * (x <= 0). Both need x, so in place the bottom data is copied before it is
    overwritten, as Caffe does.
    Params: prelu_param {filler (unset: constant 0.25), channel_shared}."""

    def setup(self, bottom, top):
        p = self.layer_param.prelu_param
        self._check_axes(bottom[0])
        self.channel_shared = p.channel_shared
        channels = bottom[0].shape[1]
        expected = 1 if self.channel_shared else channels
        if not self.blobs:
            shape = () if self.channel_shared else (channels,)
            self.blobs.append(self.make_blob(shape, bottom[0]))
            fill(self.blobs[0], p.filler if p.HasField("filler") else constant_filler(0.25))
        if len(self.blobs) != 1:
            raise self.error(f"has {len(self.blobs)} preloaded blobs, expected 1 (the slopes)")
        # Caffe compares counts only, so a legacy (1, 1, 1, C) slope blob is accepted.
        if self.blobs[0].count != expected:
            raise self.error(f"slope blob shape {self.blobs[0].shape} holds "
                             f"{self.blobs[0].count} values, expected {expected} "
                             f"({'channel_shared' if self.channel_shared else 'one per channel'}"
                             f" for bottom shape {bottom[0].shape})")

    def _check_axes(self, blob):
        if blob.num_axes < 2:
            raise self.error(f"bottom must have at least 2 axes (N, C, ...), got shape "
                             f"{blob.shape}")

    def reshape(self, bottom, top):
        self._check_axes(bottom[0])
        if not self.channel_shared and bottom[0].shape[1] != self.blobs[0].count:
            raise self.error(f"bottom shape {bottom[0].shape} has {bottom[0].shape[1]} "
                             f"channels, the slope blob {self.blobs[0].shape} has "
                             f"{self.blobs[0].count}")
        super().reshape(bottom, top)

    def _slope(self, ndim):
        """The slopes shaped to broadcast against (N, C, ...)."""
        a = self.blobs[0].data
        if self.channel_shared:
            return a.reshape(())
        return a.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        self.keep_input(bottom, top)
        neg = xp.minimum(x, 0, out=xp.empty_like(x))
        neg *= self._slope(x.ndim)
        xp.maximum(x, 0, out=top[0].data)
        top[0].data[...] += neg

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        xp = get_array_module(dy)
        x = self.kept_input(bottom, top)
        nonpos = x <= 0
        if self.param_needs_grad(0):
            g = dy * xp.where(nonpos, x, 0)
            axes = None if self.channel_shared else (0,) + tuple(range(2, x.ndim))
            self.blobs[0].diff.reshape(-1)[...] += g.sum(axis=axes).reshape(-1)
        if propagate_down[0]:
            a = self._slope(x.ndim)
            bottom[0].diff[...] = dy * xp.where(nonpos, a, 1)
