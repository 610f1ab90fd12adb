"""im2col / col2im for N spatial dimensions, written once for any ``xp``.

For an image batch x of shape (N, C, *spatial) and a kernel of shape K = (k_1..k_n) with
pad p, stride s and dilation d, the columns hold, for every channel c, kernel offset
(t_1..t_n) and output position (o_1..o_n), the value

    x[n, c, o_1*s_1 - p_1 + t_1*d_1, ...]      (0 where that lies in the padding)

Layouts:
  * default:            cols (N, C, *K, *out)  -- per image, Caffe's column buffer, whose
                        row index is c * prod(K) + kernel offset in row-major order;
  * ``batch_inside``:   cols (C, *K, N, *out)  -- reshapes for free to
                        (C * prod(K), N * prod(out)), so a whole batch convolves in one GEMM;
  * ``batch_last``:     cols (C, *K, *out, N)  -- the same GEMM with the images innermost:
                        copies move runs of N (N * out_w for stride 1) contiguous values,
                        far longer than an output row when the output is small and the batch
                        is not.

im2col is one copy of a strided view (no Python loop over taps); col2im loops over the
prod(K) kernel taps, adding each one into a zero-padded scratch image that is then cropped,
so overlapping windows accumulate in Caffe's order. Padding and accumulation use the reused
scratch arrays of ``kernels.workspace``. The output size is floor((in + 2p - (d(k-1)+1)) / s) + 1.
"""
import itertools
import math

import numpy as np

from ..backend import get_array_module
from . import parallel
from .workspace import scratch

LAYOUTS = ("image", "batch_inside", "batch_last")
# col2im accumulates blocks of about this many bytes, so they stay in a core's cache.
ACCUM_BLOCK_BYTES = 1 << 19



def kernel_extent(k, d):
    return d * (k - 1) + 1


def conv_output_shape(spatial, kernel, pad, stride, dilation):
    """Output spatial shape of a convolution (each entry may be <= 0 for a too-small input:
    callers check)."""
    return tuple((i + 2 * p - kernel_extent(k, d)) // s + 1
                 for i, k, p, s, d in zip(spatial, kernel, pad, stride, dilation))


def taps(kernel):
    """Kernel offsets in row-major order (Caffe's column-row order)."""
    return itertools.product(*(range(k) for k in kernel))


def window(tap, out, stride, dilation=None):
    """Slices that pick, for kernel offset ``tap``, the input cell of every output position
    from an array padded at the start of each spatial axis."""
    if dilation is None:
        dilation = (1,) * len(tap)
    return tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                 for t, o, s, d in zip(tap, out, stride, dilation))


def _moved(x, layout):
    """x (N, C, *S) as the source layout: image (N, C, *S), batch_inside (C, N, *S),
    batch_last (C, *S, N); a view."""
    if layout == "batch_inside":
        return x.swapaxes(0, 1)
    if layout == "batch_last":
        return x.transpose((1,) + tuple(range(2, x.ndim)) + (0,))
    return x


def _first_spatial(layout):
    return 1 if layout == "batch_last" else 2


def _padded(src, pad, first, slot="pad", copy=False):
    """src zero-padded by ``pad`` on both sides of its spatial axes (``first`` onwards), in
    a reused scratch array (only the border slabs are zeroed); src itself when pad is 0 and
    no ``copy`` is asked for."""
    if not any(pad) and not copy:
        return src
    xp = get_array_module(src)
    nd = len(pad)
    spatial = src.shape[first:first + nd]
    shape = (src.shape[:first] + tuple(i + 2 * p for i, p in zip(spatial, pad))
             + src.shape[first + nd:])
    buf = scratch(xp, slot, shape, src.dtype)
    lead = (slice(None),) * first
    for ax, (p, i) in enumerate(zip(pad, spatial)):
        if p:
            idx = [slice(None)] * src.ndim
            idx[first + ax] = slice(0, p)
            buf[tuple(idx)] = 0
            idx[first + ax] = slice(p + i, None)
            buf[tuple(idx)] = 0
    parallel.copy(buf[lead + tuple(slice(p, p + i) for p, i in zip(pad, spatial))], src)
    return buf


def _layout_of(batch_inside, layout):
    if batch_inside:
        return "batch_inside"
    if layout not in LAYOUTS:
        raise ValueError(f"unknown column layout {layout!r} (one of {LAYOUTS})")
    return layout


def columns_shape(n, c, kernel, out_sp, layout):
    if layout == "batch_inside":
        return (c,) + tuple(kernel) + (n,) + tuple(out_sp)
    if layout == "batch_last":
        return (c,) + tuple(kernel) + tuple(out_sp) + (n,)
    return (n, c) + tuple(kernel) + tuple(out_sp)


def im2col(x, kernel, pad, stride, dilation, batch_inside=False, out=None, layout="image"):
    """Columns of x (N, C, *spatial) in ``layout`` (see the module docstring).

    One copy of a strided view of the (padded) input: the view's axes step through channels,
    kernel taps (input stride times dilation), images and output positions (input stride
    times conv stride). ``out``: an array with the columns' element count to write into (it
    is returned reshaped); otherwise a new array is returned."""
    xp = get_array_module(x)
    layout = _layout_of(batch_inside, layout)
    kernel, pad, stride, dilation = map(tuple, (kernel, pad, stride, dilation))
    n, c = x.shape[:2]
    out_sp = conv_output_shape(x.shape[2:], kernel, pad, stride, dilation)
    first = _first_spatial(layout)
    # batch_last reads runs of whole batches: worth one transposing copy of the input
    src = _padded(_moved(x, layout), pad, first, copy=layout == "batch_last")
    st = src.strides
    nd = len(kernel)
    sp = st[first:first + nd]
    tap_strides = tuple(s * d for s, d in zip(sp, dilation))
    out_strides = tuple(s * q for s, q in zip(sp, stride))
    if layout == "batch_inside":
        strides = (st[0],) + tap_strides + (st[1],) + out_strides
    elif layout == "batch_last":
        strides = (st[0],) + tap_strides + out_strides + (st[-1],)
    else:
        strides = (st[0], st[1]) + tap_strides + out_strides
    shape = columns_shape(n, c, kernel, out_sp, layout)
    view = xp.lib.stride_tricks.as_strided(src, shape, strides)
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    else:
        out = out.reshape(shape)
    parallel.copy(out, view)
    return out


def col2im(cols, image_shape, kernel, pad, stride, dilation, batch_inside=False, out=None,
           layout="image"):
    """Sum columns (in ``layout``) back into an image of ``image_shape`` (N, C, *spatial);
    the adjoint of im2col. ``out``: an (N, C, *spatial) array to write the image into
    (returned); otherwise a new array is returned.

    The taps are added one after another in row-major order (Caffe's col2im order) into a
    zeroed, padded scratch image, which is then cropped into the result. On the host this
    runs a block of the layout's leading axis at a time (channels; images for "image"), so
    the accumulator stays in cache through all the taps, and blocks go to parallel threads;
    every cell still sums its taps in the same order."""
    xp = get_array_module(cols)
    layout = _layout_of(batch_inside, layout)
    kernel, pad, stride, dilation = map(tuple, (kernel, pad, stride, dilation))
    n, c = image_shape[:2]
    spatial = tuple(image_shape[2:])
    out_sp = conv_output_shape(spatial, kernel, pad, stride, dilation)
    cols = cols.reshape(columns_shape(n, c, kernel, out_sp, layout))
    if out is None:
        out = xp.empty(tuple(image_shape), dtype=cols.dtype)
    else:
        out = out.reshape(tuple(image_shape))
    target = _moved(out, layout)
    first = _first_spatial(layout)
    nd = len(spatial)
    # a strided target (batch_last) or a padded one is accumulated in scratch, then copied
    direct = not any(pad) and layout != "batch_last"
    item = (target.shape[1:first] + tuple(i + 2 * p for i, p in zip(spatial, pad))
            + target.shape[first + nd:])
    lead = (slice(None),) * first
    col_lead = (slice(None),) * (2 if layout == "image" else 1)
    crop = lead + tuple(slice(p, p + i) for p, i in zip(pad, spatial))
    wins = [(lead + window(tap, out_sp, stride, dilation), col_lead + tap)
            for tap in taps(kernel)]
    items = target.shape[0]
    block = items
    if xp is np:
        block = max(1, ACCUM_BLOCK_BYTES // max(1, math.prod(item) * cols.dtype.itemsize))

    def accumulate(b):
        buf = target[b] if direct else scratch(xp, "accum", (b.stop - b.start,) + item,
                                               cols.dtype)
        src = cols[b]
        buf[...] = 0
        # Within one tap the strided window touches distinct cells, so a plain += is
        # exact; overlaps between taps accumulate across iterations.
        for win, tap in wins:
            buf[win] += src[tap]
        if not direct:
            target[b] = buf[crop]

    def run(s):
        for start in range(s.start, s.stop, block):
            accumulate(slice(start, min(start + block, s.stop)))
    parallel.for_slices(items, run, cols.size, xp)
    return out
