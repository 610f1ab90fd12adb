"""LRN: local response normalisation across channels or within each channel."""
from ..backend import get_array_module
from ..kernels import parallel
from ..kernels.workspace import scratch
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

_LRN = caffe_pb2.LRNParameter


def window_sum(a, n, axis, out=None):
    """Centred sums of ``n`` (odd) consecutive entries along ``axis``, zero outside.

    One shifted add of slices per window offset, in offset order (the same sums as adding a
    zero-padded copy, without making one); n is small (3 or 5 in practice), so this is a few
    full-array passes and keeps the sums as exact as a direct summation. ``out``: an array of
    a's shape to write into (not ``a``)."""
    xp = get_array_module(a)
    half = (n - 1) // 2
    length = a.shape[axis]
    total = xp.empty_like(a) if out is None else out
    total[...] = 0
    dst = [slice(None)] * a.ndim
    src = [slice(None)] * a.ndim
    for offset in range(n):
        shift = offset - half                  # position c receives a[c + shift]
        lo, hi = max(0, -shift), min(length, length - shift)
        if lo >= hi:
            continue
        dst[axis] = slice(lo, hi)
        src[axis] = slice(lo + shift, hi + shift)
        total[tuple(dst)] += a[tuple(src)]
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

    def _window(self, a, slot):
        xp = get_array_module(a)
        out = scratch(xp, slot, a.shape, a.dtype)
        if self.across:
            return window_sum(a, self.size, 1, out=out)
        rows = window_sum(a, self.size, 2, out=scratch(xp, "c", a.shape, a.dtype))
        return window_sum(rows, self.size, 3, out=out)

    def _norm(self):
        """alpha over the window size: n across channels, n^2 within a channel."""
        return self.alpha / (self.size if self.across else self.size * self.size)

    def _buffer(self, name, like):
        xp = get_array_module(like)
        buf = getattr(self, name, None)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or \
                get_array_module(buf) is not xp:
            buf = xp.empty_like(like)
            setattr(self, name, buf)
        return buf

    def forward(self, bottom, top):
        x = bottom[0].data
        scale = self._buffer("scale", x)
        power = self._buffer("power", x)
        # Backward needs x; keep it when the top overwrites it.
        if top[0] is bottom[0]:
            saved = self._buffer("x_saved", x)
        else:
            saved = self.x_saved = None
        y = top[0].data
        # images are independent (the windows run over channels or within a plane)
        parallel.for_slices(x.shape[0], lambda s: self._forward_images(
            x[s], scale[s], power[s], None if saved is None else saved[s], y[s]),
            x.size * (self.size + 4), get_array_module(x))

    def _forward_images(self, x, scale, power, saved, y):
        xp = get_array_module(x)
        sq_in = scratch(xp, "a", x.shape, x.dtype)
        xp.multiply(x, x, out=sq_in)
        scale[...] = self._window(sq_in, "b")
        scale *= self._norm()
        scale += self.k if self.across else 1.0
        xp.power(scale, x.dtype.type(-self.beta), out=power)
        if saved is not None:
            saved[...] = x
        xp.multiply(x, power, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = self.x_saved if self.x_saved is not None else bottom[0].data
        dy, dx = top[0].diff, bottom[0].diff          # dx may be dy (in place)
        parallel.for_slices(x.shape[0], lambda s: self._backward_images(
            x[s], dy[s], self.power[s], self.scale[s], dx[s]),
            x.size * (self.size + 6), get_array_module(x))

    def _backward_images(self, x, dy, power, scale, dx):
        xp = get_array_module(x)
        # dy * y / scale, with y = x * scale^-beta recomputed from x.
        t = scratch(xp, "a", x.shape, x.dtype)
        xp.multiply(dy, x, out=t)
        t *= power
        t /= scale
        ratio = self._window(t, "b")
        ratio *= 2.0 * self.beta * self._norm()
        ratio *= x
        xp.multiply(dy, power, out=dx)
        dx -= ratio
