"""LRN: local response normalisation across channels or within each channel."""
from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

_LRN = caffe_pb2.LRNParameter


def window_sum(a, n, axis):
    """Centred sums of ``n`` (odd) consecutive entries along ``axis``, zero outside.

    One shifted add per window offset; n is small (3 or 5 in practice), so this is a few
    full-array passes and keeps the sums as exact as a direct summation.
    """
    xp = get_array_module(a)
    half = (n - 1) // 2
    length = a.shape[axis]
    pad = [(0, 0)] * a.ndim
    pad[axis] = (half, half)
    padded = xp.pad(a, pad)
    index = [slice(None)] * a.ndim
    index[axis] = slice(0, length)
    total = padded[tuple(index)].copy()
    for offset in range(1, n):
        index[axis] = slice(offset, offset + length)
        total += padded[tuple(index)]
    return total


@register_layer("LRN", v1="LRN")
class LRNLayer(Layer):
    """bottom x (N, C, H, W) -> top y, same shape. n = local_size (odd).
    ACROSS_CHANNELS: scale = k + (alpha/n) * sum of x^2 over channels c-(n-1)/2..c+(n-1)/2
    (missing channels count 0); y = x * scale^-beta;
    dx = dy * scale^-beta - (2 alpha beta / n) * x * sum_window(dy * y / scale).
    WITHIN_CHANNEL (k is ignored): scale = 1 + alpha * avg, where avg is the n x n average of
    x^2 (zero padded, centred; Caffe's AVE pooling with pad (n-1)/2 and stride 1, whose
    divisor is n^2 at every output position); y = x * scale^-beta;
    dx = dy * scale^-beta - (2 alpha beta / n^2) * x * boxsum(dy * y / scale).
    Params: lrn_param {local_size, alpha, beta, norm_region, k} (engine ignored)."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.lrn_param
        self.size = p.local_size
        if self.size % 2 != 1:
            raise self.error(f"lrn_param.local_size must be odd, got {self.size}")
        if p.norm_region not in (_LRN.ACROSS_CHANNELS, _LRN.WITHIN_CHANNEL):
            raise self.error(f"lrn_param.norm_region: unknown region {p.norm_region}")
        self.across = p.norm_region == _LRN.ACROSS_CHANNELS
        self.alpha, self.beta, self.k = p.alpha, p.beta, p.k

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise self.error(f"input must have 4 axes (num, channels, height, width), got "
                             f"shape {bottom[0].shape}")
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def _window(self, a):
        if self.across:
            return window_sum(a, self.size, 1)
        return window_sum(window_sum(a, self.size, 2), self.size, 3)

    def _norm(self):
        """alpha over the window size: n across channels, n^2 within a channel."""
        return self.alpha / (self.size if self.across else self.size * self.size)

    def forward(self, bottom, top):
        x = bottom[0].data
        sq = self._window(x * x)
        sq *= self._norm()
        sq += self.k if self.across else 1.0
        self.scale = sq
        self.power = sq ** -self.beta
        # Backward needs x; keep it when the top overwrites it.
        self.x_saved = x.copy() if top[0] is bottom[0] else None
        top[0].data[...] = x * self.power

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = self.x_saved if self.x_saved is not None else bottom[0].data
        dy = top[0].diff
        # dy * y / scale, with y = x * scale^-beta recomputed from x.
        ratio = self._window(dy * x * self.power / self.scale)
        ratio *= 2.0 * self.beta * self._norm()
        bottom[0].diff[...] = dy * self.power - x * ratio
