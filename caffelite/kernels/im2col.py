"""im2col / col2im for N spatial dimensions, written once for any ``xp``.

For an image batch x of shape (N, C, *spatial) and a kernel of shape K = (k_1..k_n) with
pad p, stride s and dilation d, the columns hold, for every channel c, kernel offset
(t_1..t_n) and output position (o_1..o_n), the value

    x[n, c, o_1*s_1 - p_1 + t_1*d_1, ...]      (0 where that lies in the padding)

Layouts:
  * default:            cols (N, C, *K, *out)  -- per image, Caffe's column buffer, whose
                        row index is c * prod(K) + kernel offset in row-major order;
  * ``batch_inside``:   cols (C, *K, N, *out)  -- reshapes for free to
                        (C * prod(K), N * prod(out)), so a whole batch convolves in one GEMM.

im2col is one copy of a strided view (no Python loop over taps); col2im loops over the
prod(K) kernel taps, adding each one into a zero-padded scratch image that is then cropped,
so overlapping windows accumulate in Caffe's order. Padding and accumulation use the reused
scratch arrays of ``kernels.workspace``. The output size is floor((in + 2p - (d(k-1)+1)) / s) + 1.
"""
import itertools

from ..backend import get_array_module
from .workspace import scratch


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


def _padded(src, pad, slot="im2col.pad"):
    """src (A, B, *spatial) zero-padded by ``pad`` on both sides of every spatial axis, in a
    reused scratch array (only the border slabs are zeroed); src itself when pad is 0."""
    if not any(pad):
        return src
    xp = get_array_module(src)
    spatial = src.shape[2:]
    buf = scratch(xp, slot, src.shape[:2] + tuple(i + 2 * p for i, p in zip(spatial, pad)),
                  src.dtype)
    nd = len(spatial)
    for ax, (p, i) in enumerate(zip(pad, spatial)):
        if p:
            idx = [slice(None)] * (2 + nd)
            idx[2 + ax] = slice(0, p)
            buf[tuple(idx)] = 0
            idx[2 + ax] = slice(p + i, None)
            buf[tuple(idx)] = 0
    buf[(slice(None), slice(None)) + tuple(slice(p, p + i) for p, i in zip(pad, spatial))] = src
    return buf


def im2col(x, kernel, pad, stride, dilation, batch_inside=False, out=None):
    """Columns of x (N, C, *spatial); see the module docstring for the two layouts.

    One copy of a strided view of the (padded) input: the view's axes step through channels,
    kernel taps (input stride times dilation), images and output positions (input stride
    times conv stride). ``out``: an array with the columns' element count to write into (it
    is returned reshaped); otherwise a new array is returned."""
    xp = get_array_module(x)
    kernel, pad, stride, dilation = map(tuple, (kernel, pad, stride, dilation))
    n, c = x.shape[:2]
    out_sp = conv_output_shape(x.shape[2:], kernel, pad, stride, dilation)
    src = _padded(x.swapaxes(0, 1) if batch_inside else x, pad)   # (C, N, ..) or (N, C, ..)
    s0, s1 = src.strides[:2]
    sp = src.strides[2:]
    tap_strides = tuple(s * d for s, d in zip(sp, dilation))
    out_strides = tuple(s * st for s, st in zip(sp, stride))
    if batch_inside:
        shape = (c,) + kernel + (n,) + out_sp
        strides = (s0,) + tap_strides + (s1,) + out_strides
    else:
        shape = (n, c) + kernel + out_sp
        strides = (s0, s1) + tap_strides + out_strides
    view = xp.lib.stride_tricks.as_strided(src, shape, strides)
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    else:
        out = out.reshape(shape)
    out[...] = view
    return out


def col2im(cols, image_shape, kernel, pad, stride, dilation, batch_inside=False, out=None):
    """Sum columns back into an image of ``image_shape`` (N, C, *spatial); the adjoint of
    im2col. ``out``: an (N, C, *spatial) array to write the image into (returned);
    otherwise a new array is returned.

    The taps are added one after another in row-major order (Caffe's col2im order) into a
    zeroed, padded scratch image, which is then cropped into the result."""
    xp = get_array_module(cols)
    kernel, pad, stride, dilation = map(tuple, (kernel, pad, stride, dilation))
    n, c = image_shape[:2]
    spatial = tuple(image_shape[2:])
    out_sp = conv_output_shape(spatial, kernel, pad, stride, dilation)
    lead2 = (c, n) if batch_inside else (n, c)
    cols = cols.reshape(((c,) + kernel + (n,) + out_sp) if batch_inside
                        else ((n, c) + kernel + out_sp))
    if out is None:
        out = xp.empty(tuple(image_shape), dtype=cols.dtype)
    else:
        out = out.reshape(tuple(image_shape))
    target = out.swapaxes(0, 1) if batch_inside else out
    if any(pad):
        buf = scratch(xp, "col2im.pad", lead2 + tuple(i + 2 * p for i, p in zip(spatial, pad)),
                      cols.dtype)
    else:
        buf = target          # accumulate straight into the result
    buf[...] = 0
    lead = (slice(None),) if batch_inside else (slice(None), slice(None))
    both = (slice(None), slice(None))
    # Within one tap the strided window touches distinct cells, so a plain += is exact;
    # overlaps between taps accumulate across iterations.
    for tap in taps(kernel):
        buf[both + window(tap, out_sp, stride, dilation)] += cols[lead + tap]
    if any(pad):
        target[...] = buf[both + tuple(slice(p, p + i) for p, i in zip(pad, spatial))]
    return out
