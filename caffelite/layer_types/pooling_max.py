"""MAX pooling's forward and the argmax backward it shares with STOCHASTIC pooling.

The window cells are gathered into a contiguous tap stack (one copy of a strided view) a
cache-sized chunk of planes at a time, then scanned tap by tap as Caffe scans a window: from
-FLT_MAX, keeping the first strictly greater value, so pad cells (-inf) and NaN never win and
ties keep the first cell. Planes are independent, so chunks go to the host threads.
"""
import numpy as np

from ..backend import get_array_module, scatter_add
from ..kernels import parallel
from ..kernels.workspace import scratch
from ..proto import caffe_pb2

P = caffe_pb2.PoolingParameter
FLT_MAX = float(np.finfo(np.float32).max)
# MAX pooling gathers the window cells of at most this many elements at once: on the host a
# chunk whose per-tap passes stay in a core's cache, on a GPU a large one (fewer launches).
STACK_ELEMENTS = 1 << 20
DEVICE_STACK_ELEMENTS = 1 << 23


class MaxPoolingMixin:
    def _tap_stack(self, src, c):
        """The window cells of images ``c`` of the padded ``src`` as one contiguous
        (kh*kw, n, C, PH, PW) scratch array: one copy of a strided view, after which every
        per-tap operation runs on contiguous memory."""
        xp = get_array_module(src)
        (kh, kw), (sh, sw) = self.k, self.stride
        sub = src[c]
        s_n, s_c, s_h, s_w = sub.strides
        shape = (kh, kw) + sub.shape[:2] + self.out
        view = xp.lib.stride_tricks.as_strided(
            sub, shape, (s_h, s_w, s_n, s_c, s_h * sh, s_w * sw))
        stack = scratch(xp, "cols", shape, src.dtype)
        stack[...] = view
        return stack.reshape((kh * kw,) + shape[2:])

    def _forward_max(self, x, xp, top):
        n, c = x.shape[:2]
        shape = (n, c) + self.out
        if self.argmax is None or self.argmax.shape != shape or \
                get_array_module(self.argmax) is not xp:
            self.argmax = xp.empty(shape, dtype=np.int32)
        src = self._padded_input(x, -np.inf)
        # planes are independent: work in chunks of planes whose tap stack stays in cache
        # (on the host), thread pieces each running their own chunks and scratch arrays
        planes = n * c
        src = src.reshape((planes, 1) + src.shape[2:])
        best = top[0].data.reshape((planes, 1) + self.out)
        idx = self.argmax.reshape(best.shape)
        per_plane = self.k[0] * self.k[1] * self.out[0] * self.out[1]
        offsets = self._const("offsets", lambda: self._tap_offsets(x.shape[3]), xp, np.int32)
        corners = self._const("corners", lambda: self._cell_indices(x.shape[3])[0], xp,
                              np.int32)
        limit = STACK_ELEMENTS if xp is np else DEVICE_STACK_ELEMENTS

        # In a net that never runs this layer's backward and wants no mask top, the argmax
        # is not needed: the maximum alone is a fraction of the work.
        with_argmax = self.backward_expected or len(top) > 1
        self._argmax_valid = with_argmax

        def run(part):
            step = max(1, limit // per_plane)
            for i in range(part.start, part.stop, step):
                ch = slice(i, min(i + step, part.stop))
                if with_argmax:
                    self._max_chunk(src, ch, best[ch], idx[ch], offsets, corners)
                else:
                    self._max_value_chunk(src, ch, best[ch])
        parallel.for_slices(planes, run, planes * per_plane, xp)
        if len(top) > 1:
            top[1].data[...] = self.argmax

    def _max_value_chunk(self, src, ch, best):
        """The maximum of each window (as _max_chunk computes it) without the argmax."""
        xp = get_array_module(src)
        stack = self._tap_stack(src, ch)
        xp.fmax(stack[0], src.dtype.type(-FLT_MAX), out=best)
        for t in range(1, stack.shape[0]):
            xp.fmax(best, stack[t], out=best)

    def _max_chunk(self, src, ch, best, idx, offsets, corners):
        """MAX pooling of images ``ch`` of the padded input into ``best`` and the flat
        argmax ``idx``."""
        xp = get_array_module(src)
        kk = self.k[0] * self.k[1]
        tdt = np.int8 if kk <= 127 else np.int32    # the winning tap: int8 math is cheap
        low = src.dtype.type(-FLT_MAX)
        stack = self._tap_stack(src, ch)
        shape = best.shape
        tap = scratch(xp, "a", shape, tdt)
        gt = scratch(xp, "b", shape, bool)
        step = scratch(xp, "c", shape, tdt)
        # Caffe scans the window cells in row-major order from -FLT_MAX, keeping the first
        # strictly greater value: pad cells (-inf) and NaN never win, ties keep the first.
        xp.fmax(stack[0], low, out=best)
        tap.fill(0)
        for t in range(1, kk):
            xp.greater(stack[t], best, out=gt)
            xp.fmax(best, stack[t], out=best)
            # tap = where(gt, t, tap) by arithmetic: random masks make masked copies
            # branchy and several times slower
            xp.subtract(tdt(t), tap, out=step)
            xp.multiply(step, gt, out=step)
            tap += step
        # flat in-plane index h*W + w of the winning cell; -1 where nothing beat -FLT_MAX
        xp.take(offsets, tap, out=idx)
        idx += corners
        xp.equal(best, low, out=gt)
        step32 = scratch(xp, "d", idx.shape, np.int32)
        xp.add(idx, 1, out=step32)
        step32 *= gt
        idx -= step32

    def _backward_argmax(self, dy, bottom):
        """MAX and STOCHASTIC backward: each window's diff to the cell its forward chose."""
        xp = get_array_module(dy)
        n, c, h, w = bottom.shape
        if self.pool == P.MAX and not self._argmax_valid:
            raise self.error("MAX pooling backward without the argmax of a forward: the net "
                             "that ran the forward expected no backward through this layer "
                             "(set force_backward, or call Backward only where the net does)")
        base = self._const("plane_base", lambda: (np.arange(n * c, dtype=np.int64) *
                                                  (h * w)).reshape(n, c, 1, 1), xp, np.int64)
        # images own disjoint planes of dx: thread pieces each scatter their own
        parallel.for_slices(
            n, lambda s: self._scatter_argmax(dy[s], self.argmax[s], base[:s.stop - s.start],
                                              bottom.diff[s]),
            dy.size, xp)

    @staticmethod
    def _scatter_argmax(dy, idx, base, dx):
        """dx (images, C, H, W) = each window's diff added at its argmax cell, in top order
        as Caffe's CPU loop (np.add.at / cupyx.scatter_add); an empty window (argmax -1)
        sends nothing: a zero to cell 0 of its plane. ``base``: each plane's first flat
        index in dx."""
        xp = get_array_module(dy)
        valid = scratch(xp, "b", idx.shape, bool)
        xp.greater_equal(idx, 0, out=valid)
        flat = scratch(xp, "c", idx.shape, np.int64)
        if bool(valid.all()):                 # the usual case: every window had a winner
            vals = dy
            flat[...] = idx
        else:
            vals = scratch(xp, "a", idx.shape, dy.dtype)
            vals.fill(0)
            xp.copyto(vals, dy, where=valid)
            xp.maximum(idx, 0, out=flat)
        flat += base
        dx = dx.reshape(-1)
        dx.fill(0)
        scatter_add(xp, dx, flat.reshape(-1), vals.reshape(-1))
