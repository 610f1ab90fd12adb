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

Both directions loop over the prod(K) kernel taps, each one strided slice copy of the whole
batch; col2im adds every tap into a zero-padded image and crops, so overlapping windows
accumulate. The output size is floor((in + 2p - (d(k-1)+1)) / s) + 1.
"""
import itertools

from ..backend import get_array_module


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


def _padded(src, pad):
    """src (A, B, *spatial) zero-padded by ``pad`` on both sides of every spatial axis."""
    if not any(pad):
        return src
    xp = get_array_module(src)
    spatial = src.shape[2:]
    buf = xp.zeros(src.shape[:2] + tuple(i + 2 * p for i, p in zip(spatial, pad)),
                   dtype=src.dtype)
    buf[(slice(None), slice(None)) + tuple(slice(p, p + i) for p, i in zip(pad, spatial))] = src
    return buf


def im2col(x, kernel, pad, stride, dilation, batch_inside=False):
    """Columns of x (N, C, *spatial); see the module docstring for the two layouts."""
    xp = get_array_module(x)
    kernel, pad, stride, dilation = map(tuple, (kernel, pad, stride, dilation))
    n, c = x.shape[:2]
    out = conv_output_shape(x.shape[2:], kernel, pad, stride, dilation)
    if batch_inside:
        src = _padded(x.swapaxes(0, 1), pad)          # (C, N, *padded)
        cols = xp.empty((c,) + kernel + (n,) + out, dtype=x.dtype)
        lead = (slice(None),)
    else:
        src = _padded(x, pad)                         # (N, C, *padded)
        cols = xp.empty((n, c) + kernel + out, dtype=x.dtype)
        lead = (slice(None), slice(None))
    both = (slice(None), slice(None))
    for tap in taps(kernel):
        cols[lead + tap] = src[both + window(tap, out, stride, dilation)]
    return cols


def col2im(cols, image_shape, kernel, pad, stride, dilation, batch_inside=False):
    """Sum columns back into an image of ``image_shape`` (N, C, *spatial); the adjoint of
    im2col. Returns a (possibly non-contiguous) array of that shape."""
    xp = get_array_module(cols)
    kernel, pad, stride, dilation = map(tuple, (kernel, pad, stride, dilation))
    n, c = image_shape[:2]
    spatial = tuple(image_shape[2:])
    out = conv_output_shape(spatial, kernel, pad, stride, dilation)
    lead2 = (c, n) if batch_inside else (n, c)
    padded = tuple(i + 2 * p for i, p in zip(spatial, pad))
    buf = xp.zeros(lead2 + padded, dtype=cols.dtype)
    lead = (slice(None),) if batch_inside else (slice(None), slice(None))
    both = (slice(None), slice(None))
    # Within one tap the strided window touches distinct cells, so a plain += is exact;
    # overlaps between taps accumulate across iterations.
    for tap in taps(kernel):
        buf[both + window(tap, out, stride, dilation)] += cols[lead + tap]
    img = buf[both + tuple(slice(p, p + i) for p, i in zip(pad, spatial))]
    return img.swapaxes(0, 1) if batch_inside else img
