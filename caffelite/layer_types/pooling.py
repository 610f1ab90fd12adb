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

from .. import backend
from ..backend import get_array_module, scatter_add, to_device
from ..kernels.im2col import taps, window
from ..layer import Layer, register_layer
from ..proto import caffe_pb2

P = caffe_pb2.PoolingParameter
FLT_MAX = float(np.finfo(np.float32).max)


def _pooled_size(size, k, p, s, ceil_mode):
    num = size + 2 * p - k
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if p and (out - 1) * s >= size + p:
        out -= 1
    return out


@register_layer("Pooling", v1="POOLING")
class PoolingLayer(Layer):
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
        for t in top:
            t.reshape((n, c) + out)
        self._prepare_geometry(h, w)

    def _prepare_geometry(self, h, w):
        """Padded extent covering every window, and (AVE) the per-window divisors."""
        (kh, kw), (ph, pw), (sh, sw), (oh, ow) = self.k, self.pad, self.stride, self.out
        # ceil mode can run the last window past H + 2p; pad far enough to hold it
        self.padded = (max(h + 2 * ph, (oh - 1) * sh + kh), max(w + 2 * pw, (ow - 1) * sw + kw))
        hs = np.arange(oh) * sh - ph
        ws = np.arange(ow) * sw - pw
        self.h_starts, self.w_starts = hs, ws
        if self.pool == P.AVE:
            div = np.outer(np.minimum(hs + kh, h + ph) - hs, np.minimum(ws + kw, w + pw) - ws)
            # A window wholly past the image (no pad, stride > kernel) sums nothing, and Caffe
            # divides by a non-positive size there (0/0 = NaN). Dividing by 1 instead gives 0,
            # and in backward such a window only feeds padding cells, which are cropped.
            self.divisor = np.maximum(div, 1)

    def _padded_input(self, x, fill_value):
        xp = get_array_module(x)
        h, w = x.shape[2:]
        ph, pw = self.pad
        buf = xp.full(x.shape[:2] + self.padded, fill_value, dtype=x.dtype)
        buf[:, :, ph:ph + h, pw:pw + w] = x
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
            acc = xp.zeros(x.shape[:2] + self.out, dtype=x.dtype)
            for _, v in self._tap_views(self._padded_input(x, 0)):
                acc += v
            top[0].data[...] = acc / to_device(self.divisor.astype(x.dtype), xp)

    def _forward_max(self, x, xp, top):
        w = x.shape[3]
        shape = x.shape[:2] + self.out
        best = xp.full(shape, -FLT_MAX, dtype=x.dtype)
        idx = xp.full(shape, -1, dtype=np.int32)     # -1: a window without image cells
        win = xp.empty(shape, dtype=bool)
        # flat in-plane index h*W + w that tap (i, j) reads for every window
        cells = to_device(self._cell_indices(w), xp)
        # Pad cells are -inf, so they never beat the -FLT_MAX start (Caffe clips windows).
        # Strict > over taps in row-major order keeps the first maximum as Caffe's scan does;
        # fmax skips NaN like the > test. Arithmetic updates, not masked copies: random masks
        # make those branchy and several times slower.
        for t, (_, v) in enumerate(self._tap_views(self._padded_input(x, -np.inf))):
            xp.greater(v, best, out=win)
            xp.fmax(best, v, out=best)
            idx += (cells[t] - idx) * win
        self.argmax = idx
        top[0].data[...] = best
        if len(top) > 1:
            top[1].data[...] = idx

    def _cell_indices(self, w):
        """Per tap, the flat in-plane index h*W + w it reads for every window."""
        return np.stack([np.add.outer((self.h_starts + i) * w, self.w_starts + j)
                         for i, j in taps(self.k)]).astype(np.int32)

    def _forward_stochastic(self, x, xp, top):
        h, w = x.shape[2:]
        views = [v for _, v in self._tap_views(self._padded_input(x, 0))]
        total = xp.zeros(x.shape[:2] + self.out, dtype=x.dtype)
        for v in views:
            total += v
        if self.phase != caffe_pb2.TRAIN:
            sq = xp.zeros_like(total)
            for v in views:
                sq += v * v
            # Caffe starts the sum at FLT_MIN, so an all-zero window gives 0, not 0/0.
            top[0].data[...] = sq / (total + x.dtype.type(np.finfo(np.float32).tiny))
            return
        # (0, 1] like curand's uniform: a zero-valued cell can never reach a positive
        # threshold before a positive one has.
        u = 1.0 - backend.rng().random(total.shape)
        thres = to_device(u.astype(x.dtype), xp) * total
        # Taps that lie past the bottom/right edge (ceil-mode windows) are not cells; windows
        # that start past the image have none and keep index -1, value 0.
        valid = to_device(np.stack([np.outer(self.h_starts + i < h, self.w_starts + j < w)
                                    for i, j in taps(self.k)]), xp)
        cells = to_device(self._cell_indices(w), xp)
        cum = xp.zeros_like(total)
        found = xp.zeros(total.shape, dtype=bool)
        idx = xp.full(total.shape, -1, dtype=np.int32)
        val = xp.zeros_like(total)
        for t, v in enumerate(views):
            cum += v
            hit = (cum >= thres) & valid[t] & ~found
            idx = xp.where(hit, cells[t], idx)
            val = xp.where(hit, v, val)
            found |= hit
        self.argmax = idx
        top[0].data[...] = val

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.pool == P.STOCHASTIC and self.phase != caffe_pb2.TRAIN:
            raise self.error("STOCHASTIC pooling has no backward in the TEST phase (its "
                             "output sum(x^2)/sum(x) remembers no sampled cell)")
        dy = top[0].diff
        xp = get_array_module(dy)
        n, c, h, w = bottom[0].shape
        if self.pool in (P.MAX, P.STOCHASTIC):
            idx = self.argmax
            base = xp.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
            dx = xp.zeros(n * c * h * w, dtype=dy.dtype)
            valid = idx >= 0   # an empty window (argmax -1) sends nothing
            scatter_add(xp, dx, (base + xp.maximum(idx, 0)).ravel(), (dy * valid).ravel())
            bottom[0].diff[...] = dx.reshape(n, c, h, w)
            return
        g = dy / to_device(self.divisor.astype(dy.dtype), xp)
        grad = xp.zeros((n, c) + self.padded, dtype=dy.dtype)
        both = (slice(None), slice(None))
        for tap in taps(self.k):
            grad[both + window(tap, self.out, self.stride)] += g
        ph, pw = self.pad
        bottom[0].diff[...] = grad[:, :, ph:ph + h, pw:pw + w]
