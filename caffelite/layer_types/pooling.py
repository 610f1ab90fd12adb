"""Pooling: MAX, AVE or STOCHASTIC over k_h x k_w windows of each (n, c) plane.

bottom (N, C, H, W), 4-D -> top (N, C, PH, PW), and for MAX an optional second top of the
same shape holding each window's argmax as a float flat index h*W + w within its plane.
PH = ceil((H + 2p - k) / s) + 1 (floor with round_mode FLOOR); when p > 0 the last window must
start inside the image or the top/left pad: if (PH-1)*s >= H + p, PH -= 1. Same for W.
Window (ph, pw) starts at hs = ph*s - p.
  MAX: max over the in-image cells [max(hs,0), min(hs+k,H)) (pad cells never win), scanned in
       row-major order with strict >, so the first maximum wins; a window with no image cell
       gives -FLT_MAX and argmax -1. Backward adds the top diff at the argmax.
  AVE: sum over in-image cells / ((min(hs+k, H+p) - hs) * (same for w)): the divisor counts pad
       cells but not positions past the bottom/right pad (a window wholly past the image gives
       0, where Caffe divides 0 by 0). Backward spreads diff / divisor.
  STOCHASTIC (pad must be 0; window cells [hs, min(hs+k, H))): in TRAIN (the layer's phase)
       each window draws u in (0, 1] from caffelite.backend.rng() (one per window, in top
       order) and picks the first cell in row-major scan whose running sum reaches u * sum;
       the top is that cell's value and backward sends the top diff to it. With inputs >= 0
       a cell is picked with probability value / sum. In TEST the top is sum(x^2) / sum(x)
       (0 for an all-zero window) and there is no backward (Caffe has none either).
       Caffe runs STOCHASTIC on the GPU only; here it runs on both.
global_pooling: kernel = H x W, pad must be 0 and stride 1.
Params: pooling_param {pool, kernel_size, kernel_h, kernel_w, stride, stride_h, stride_w, pad,
pad_h, pad_w, global_pooling, round_mode}. engine is ignored.
"""
import numpy as np

from ..backend import get_array_module, to_device
from ..kernels import parallel
from ..kernels.im2col import taps, window
from ..kernels.workspace import scratch
from ..layer import Layer, register_layer
from ..proto import caffe_pb2
from .pooling_max import MaxPoolingMixin
from .pooling_stochastic import StochasticPoolingMixin

P = caffe_pb2.PoolingParameter


def _pooled_size(size, k, p, s, ceil_mode):
    num = size + 2 * p - k
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if p and (out - 1) * s >= size + p:
        out -= 1
    return out


@register_layer("Pooling", v1="POOLING")
class PoolingLayer(MaxPoolingMixin, StochasticPoolingMixin, Layer):
    exact_num_bottom = 1
    min_top = 1
    max_top = 2

    def setup(self, bottom, top):
        p = self.layer_param.pooling_param
        has = p.HasField
        self.pool = p.pool
        self.global_pooling = p.global_pooling
        if len(top) > 1 and self.pool != P.MAX:
            raise self.error(f"takes 1 top blob unless pooling_param.pool is MAX, got {len(top)}")
        if self.global_pooling:
            if has("kernel_size") or has("kernel_h") or has("kernel_w"):
                raise self.error("with pooling_param.global_pooling true the filter size "
                                 "(kernel_size / kernel_h / kernel_w) cannot be specified")
            self.kernel = None
        else:
            if has("kernel_size") == (has("kernel_h") and has("kernel_w")):
                raise self.error("pooling_param: the filter size is kernel_size OR kernel_h and "
                                 "kernel_w (both are required for non-square filters)")
            self.kernel = ((p.kernel_size, p.kernel_size) if has("kernel_size")
                           else (p.kernel_h, p.kernel_w))
            if min(self.kernel) <= 0:
                raise self.error(f"pooling_param: filter dimensions cannot be zero "
                                 f"(kernel {self.kernel})")
        self.pad = self._pair(p, "pad")
        self.stride = self._pair(p, "stride")
        if min(self.stride) <= 0:
            raise self.error(f"pooling_param: stride must be positive (stride {self.stride})")
        if self.global_pooling and (any(self.pad) or self.stride != (1, 1)):
            raise self.error(f"with pooling_param.global_pooling true only pad = 0 and "
                             f"stride = 1 are allowed (pad {self.pad}, stride {self.stride})")
        if any(self.pad):
            if self.pool not in (P.MAX, P.AVE):
                raise self.error("pooling_param: padding is implemented only for average "
                                 "and max pooling")
            if self.kernel and (self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]):
                raise self.error(f"pooling_param: pad {self.pad} must be smaller than the "
                                 f"kernel {self.kernel}")
        if self.pool not in (P.MAX, P.AVE, P.STOCHASTIC):
            raise self.error(f"pooling_param.pool: unknown pooling method {self.pool}")
        self.ceil_mode = p.round_mode == P.CEIL
        self.argmax = None
        self._argmax_valid = False

    def _pair(self, p, name):
        has = p.HasField
        if has(name + "_h") or has(name + "_w"):
            if has(name) or not (has(name + "_h") and has(name + "_w")):
                raise self.error(f"pooling_param: {name} is {name} OR {name}_h and {name}_w "
                                 f"(both are required)")
            return (int(getattr(p, name + "_h")), int(getattr(p, name + "_w")))
        v = int(getattr(p, name))
        return (v, v)

    def reshape(self, bottom, top):
        # Runs before every forward: nothing to redo while the shapes stay as they were.
        if getattr(self, "_shapes_seen", None) == [bottom[0].shape] + [t.shape for t in top]:
            return
        self._reshape(bottom, top)
        self._shapes_seen = [bottom[0].shape] + [t.shape for t in top]

    def _reshape(self, bottom, top):
        shape = tuple(bottom[0].shape)
        if len(shape) != 4:
            raise self.error(f"input must have 4 axes, corresponding to (num, channels, "
                             f"height, width); bottom shape is {shape}")
        n, c, h, w = shape
        k = (h, w) if self.global_pooling else self.kernel
        out = tuple(_pooled_size(size, kk, pp, ss, self.ceil_mode)
                    for size, kk, pp, ss in zip((h, w), k, self.pad, self.stride))
        if min(out) <= 0:
            raise self.error(f"bottom shape {shape} is too small for kernel {k} with pad "
                             f"{self.pad} (pooled size {out})")
        self.k, self.out = k, out
        self.batch_shape = (n, c)
        for t in top:
            t.reshape((n, c) + out)
        self._prepare_geometry(h, w)

    def _prepare_geometry(self, h, w):
        """Padded extent covering every window, and (AVE) the per-window divisors."""
        (kh, kw), (ph, pw), (sh, sw), (oh, ow) = self.k, self.pad, self.stride, self.out
        # ceil mode can run the last window past H + 2p; pad far enough to hold it
        self.padded = (max(h + 2 * ph, (oh - 1) * sh + kh), max(w + 2 * pw, (ow - 1) * sw + kw))
        self.needs_pad = self.padded != (h + 2 * ph, w + 2 * pw) or ph or pw
        hs = np.arange(oh) * sh - ph
        ws = np.arange(ow) * sw - pw
        self.h_starts, self.w_starts = hs, ws
        key = (self.batch_shape, h, w, self.out)
        if getattr(self, "_geometry_key", None) != key:
            self._geometry_key = key
            self._device_consts = {}
        if self.pool == P.AVE:
            div = np.outer(np.minimum(hs + kh, h + ph) - hs, np.minimum(ws + kw, w + pw) - ws)
            # A window wholly past the image (no pad, stride > kernel) sums nothing, and Caffe
            # divides by a non-positive size there (0/0 = NaN). Dividing by 1 instead gives 0,
            # and in backward such a window only feeds padding cells, which are cropped.
            self.divisor = np.maximum(div, 1)

    def _const(self, name, make, xp, dtype):
        """A per-geometry constant array moved to ``xp`` once (not on every iteration)."""
        key = (name, xp.__name__, np.dtype(dtype).str)
        value = self._device_consts.get(key)
        if value is None:
            value = self._device_consts[key] = to_device(make().astype(dtype), xp)
        return value

    def _padded_input(self, x, fill_value):
        """x in a reused scratch array of the padded extent, the border set to
        ``fill_value``; x itself when no window reaches past the image."""
        if not self.needs_pad:
            return x
        xp = get_array_module(x)
        h, w = x.shape[2:]
        ph, pw = self.pad
        buf = scratch(xp, "pad", x.shape[:2] + self.padded, x.dtype)
        buf[:, :, :ph] = fill_value
        buf[:, :, ph + h:] = fill_value
        buf[:, :, ph:ph + h, :pw] = fill_value
        buf[:, :, ph:ph + h, pw + w:] = fill_value
        parallel.copy(buf[:, :, ph:ph + h, pw:pw + w], x)
        return buf

    def _tap_views(self, arr):
        both = (slice(None), slice(None))
        for tap in taps(self.k):
            yield tap, arr[both + window(tap, self.out, self.stride)]

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        if self.pool == P.MAX:
            self._forward_max(x, xp, top)
        elif self.pool == P.STOCHASTIC:
            self._forward_stochastic(x, xp, top)
        else:
            src = self._padded_input(x, 0)
            divisor = self._const("divisor", lambda: self.divisor, xp, x.dtype)

            def run(s):
                y = top[0].data[s]
                views = [v for _, v in self._tap_views(src[s])]
                if len(views) == 1:
                    y[...] = views[0]
                else:
                    xp.add(views[0], views[1], out=y)
                    for v in views[2:]:
                        y += v
                y /= divisor
            parallel.for_slices(x.shape[0], run, top[0].data.size * len(self.k), xp)

    def _tap_offsets(self, w):
        """Flat in-plane offset i*W + j of tap (i, j) from its window's corner."""
        return np.array([i * w + j for i, j in taps(self.k)], dtype=np.int32)

    def _cell_indices(self, w):
        """Per tap, the flat in-plane index h*W + w it reads for every window."""
        return np.stack([np.add.outer((self.h_starts + i) * w, self.w_starts + j)
                         for i, j in taps(self.k)]).astype(np.int32)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.pool == P.STOCHASTIC and self.phase != caffe_pb2.TRAIN:
            raise self.error("STOCHASTIC pooling has no backward in the TEST phase (its "
                             "output sum(x^2)/sum(x) remembers no sampled cell)")
        dy = top[0].diff
        xp = get_array_module(dy)
        n, c, h, w = bottom[0].shape
        ph, pw = self.pad
        if self.pool in (P.MAX, P.STOCHASTIC):
            self._backward_argmax(dy, bottom[0])
            return
        g = scratch(xp, "a", dy.shape, dy.dtype)
        xp.divide(dy, self._const("divisor", lambda: self.divisor, xp, dy.dtype), out=g)
        grad = (scratch(xp, "accum", (n, c) + self.padded, dy.dtype) if self.needs_pad
                else bottom[0].diff)

        def spread(s):
            grad[s] = 0
            for _, v in self._tap_views(grad[s]):
                v += g[s]
            if self.needs_pad:
                bottom[0].diff[s] = grad[s, :, ph:ph + h, pw:pw + w]
        parallel.for_slices(n, spread, dy.size * len(self.k), xp)
