"""Convolution layer and the im2col/col2im kernels it is built on."""
import itertools

import numpy as np
import pytest

from caffelite.errors import CaffeliteError
from caffelite.kernels import im2col as im2col_mod
from caffelite.kernels.im2col import col2im, conv_output_shape, im2col
from caffelite.layer_types import convolution as conv_mod
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import convolution_layer_param, expand


def conv_param(num_output=4, n_bottom=1, **kw):
    return convolution_layer_param("Convolution", "conv", num_output, n_bottom, **kw)


def reference_conv(x, w, b, pad, stride, dilation, group):
    """Direct N-D convolution: loop over output positions, np.sum over each window."""
    n_sp = x.ndim - 2
    kernel = w.shape[2:]
    pad, stride, dilation = (expand(v, n_sp) for v in (pad, stride, dilation))
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    out = [(s + 2 * p - (d * (k - 1) + 1)) // st + 1
           for s, p, k, d, st in zip(x.shape[2:], pad, kernel, dilation, stride)]
    co = w.shape[0]
    cg = x.shape[1] // group
    og = co // group
    y = np.zeros((x.shape[0], co) + tuple(out))
    for n in range(x.shape[0]):
        for o in range(co):
            g = o // og
            for pos in np.ndindex(*out):
                win = tuple(slice(q * st, q * st + d * (k - 1) + 1, d)
                            for q, st, d, k in zip(pos, stride, dilation, kernel))
                patch = xp[(n, slice(g * cg, (g + 1) * cg)) + win]
                y[(n, o) + pos] = np.sum(patch * w[o]) + (b[o] if b is not None else 0.0)
    return y


# -- im2col / col2im --------------------------------------------------------------------------
def loop_im2col(x, kernel, pad, stride, dilation):
    n, c = x.shape[:2]
    out = conv_output_shape(x.shape[2:], kernel, pad, stride, dilation)
    cols = np.zeros((n, c) + tuple(kernel) + out)
    for idx in np.ndindex(*cols.shape):
        tap, pos = idx[2:2 + len(kernel)], idx[2 + len(kernel):]
        src = [q * s - p + t * d for q, s, p, t, d in zip(pos, stride, pad, tap, dilation)]
        if all(0 <= v < size for v, size in zip(src, x.shape[2:])):
            cols[idx] = x[idx[:2] + tuple(src)]
    return cols


IM2COL_CASES = [
    ((2, 3, 5, 6), (3, 2), (1, 0), (2, 1), (1, 1)),
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), (2, 2)),
    ((2, 1, 4, 5), (2, 2), (1, 1), (3, 2), (1, 2)),
    ((2, 2, 9), (3,), (1,), (2,), (2,)),                     # 1-D
    ((1, 2, 4, 5, 3), (2, 3, 2), (0, 1, 1), (1, 2, 1), (1, 1, 2)),  # 3-D
]


@pytest.mark.parametrize("shape,kernel,pad,stride,dilation", IM2COL_CASES)
def test_im2col_matches_loops_and_col2im_is_adjoint(shape, kernel, pad, stride, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    expected = loop_im2col(x, kernel, pad, stride, dilation)
    cols = im2col(x, kernel, pad, stride, dilation)
    np.testing.assert_array_equal(cols, expected)
    inside = im2col(x, kernel, pad, stride, dilation, batch_inside=True)
    nk = len(kernel)
    perm = (1,) + tuple(range(2, 2 + nk)) + (0,) + tuple(range(2 + nk, cols.ndim))
    np.testing.assert_array_equal(inside, expected.transpose(perm))
    # col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>, which holds only if
    # overlapping taps accumulate.
    c = rng.standard_normal(cols.shape)
    back = col2im(c, shape, kernel, pad, stride, dilation)
    assert back.shape == shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)
    back_inside = col2im(c.transpose(perm), shape, kernel, pad, stride, dilation,
                         batch_inside=True)
    np.testing.assert_allclose(back_inside, back, rtol=1e-12, atol=1e-12)


def test_col2im_counts_overlapping_windows():
    ones = np.ones((1, 1, 3, 3, 3, 3))  # 3x3 kernel, stride 1, no pad, on a 5x5 image
    counts = col2im(ones, (1, 1, 5, 5), (3, 3), (0, 0), (1, 1), (1, 1))[0, 0]
    expected = np.zeros((5, 5))
    for i, j in itertools.product(range(3), range(3)):
        expected[i:i + 3, j:j + 3] += 1
    np.testing.assert_array_equal(counts, expected)


# -- forward ------------------------------------------------------------------------------------
FORWARD_CASES = [
    ("basic", (2, 3, 6, 5), dict(num_output=4, kernel_size=[3])),
    ("pad_stride", (2, 3, 7, 6), dict(num_output=2, kernel_size=[3], pad=[1], stride=[2])),
    ("hw", (2, 2, 9, 8), dict(num_output=3, kernel_h=3, kernel_w=2, pad_h=1, pad_w=0,
                              stride_h=2, stride_w=1)),
    ("dilation", (1, 2, 9, 9), dict(num_output=2, kernel_size=[3], pad=[2], dilation=[2])),
    ("per_dim", (2, 2, 7, 8), dict(num_output=2, kernel_size=[2, 3], pad=[0, 1],
                                   stride=[1, 2], dilation=[2, 1])),
    ("group", (2, 4, 5, 5), dict(num_output=6, kernel_size=[3], pad=[1], group=2)),
    ("no_bias", (2, 3, 5, 4), dict(num_output=2, kernel_size=[2], bias_term=False)),
    ("1x1", (2, 5, 4, 3), dict(num_output=3, kernel_size=[1])),
    ("1x1_group", (2, 6, 3, 4), dict(num_output=4, kernel_size=[1], group=2)),
    ("depthwise", (2, 3, 5, 5), dict(num_output=3, kernel_size=[3], pad=[1], group=3)),
    ("1x1_stride", (2, 3, 5, 5), dict(num_output=2, kernel_size=[1], stride=[2])),
    ("1d", (2, 3, 9), dict(num_output=2, kernel_size=[3], pad=[1], stride=[2])),
    ("3d", (1, 2, 4, 5, 4), dict(num_output=2, kernel_size=[2, 3, 2], pad=[1, 0, 1],
                                 stride=[1, 2, 1])),
    ("kernel_equals_input", (2, 2, 3, 3), dict(num_output=2, kernel_size=[3])),
]


def _geometry(p, shape):
    n_sp = len(shape) - 2
    if p.HasField("kernel_h"):
        return (p.kernel_h, p.kernel_w), (p.pad_h, p.pad_w), \
            (p.stride_h or 1, p.stride_w or 1), (1, 1)
    return (expand(list(p.kernel_size), n_sp), expand(list(p.pad) or [0], n_sp),
            expand(list(p.stride) or [1], n_sp), expand(list(p.dilation) or [1], n_sp))


@pytest.mark.parametrize("name,shape,kw", FORWARD_CASES, ids=[c[0] for c in FORWARD_CASES])
def test_forward_matches_reference(name, shape, kw):
    x = np.random.default_rng(1).standard_normal(shape)
    lp = conv_param(**kw)
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    p = lp.convolution_param
    kernel, pad, stride, dilation = _geometry(p, shape)
    w = layer.blobs[0].data
    assert w.shape == (p.num_output, shape[1] // p.group) + tuple(kernel)
    b = layer.blobs[1].data if p.bias_term else None
    assert len(layer.blobs) == (2 if p.bias_term else 1)
    expected = reference_conv(x, w, b, pad, stride, dilation, p.group)
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-10)


def test_forward_float32_and_several_bottoms_share_weights():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, 3, 6, 6)) for _ in range(2)]
    lp = conv_param(num_output=4, n_bottom=2, kernel_size=[3], pad=[1], stride=[2])
    bottom = make_blobs(xs, dtype=np.float32)
    layer, top = build_layer(lp, bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    w, b = (bl.data.astype(np.float64) for bl in layer.blobs)
    for x, t in zip(xs, top):
        assert t.data.dtype == np.float32
        expected = reference_conv(x.astype(np.float32).astype(np.float64), w, b, 1, 2, 1, 1)
        np.testing.assert_allclose(t.data, expected, rtol=1e-5, atol=1e-5)


def test_channel_axis_2_with_two_batch_axes():
    x = np.random.default_rng(3).standard_normal((2, 3, 2, 5, 4))
    lp = conv_param(num_output=3, kernel_size=[2], axis=2)
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (2, 3, 3, 4, 3)
    w, b = (bl.data for bl in layer.blobs)
    expected = reference_conv(x.reshape(6, 2, 5, 4), w, b, 0, 1, 1, 1)
    np.testing.assert_allclose(top[0].data.reshape(6, 3, 4, 3), expected, rtol=1e-10)


def test_weight_filler_defaults_to_constant_zero():
    lp = caffe_pb2.LayerParameter(name="conv", type="Convolution", bottom=["x"], top=["y"])
    lp.convolution_param.num_output = 2
    lp.convolution_param.kernel_size.append(3)
    layer, top = build_layer(lp, make_blobs([np.ones((1, 2, 4, 4))]))
    assert all(not bl.data.any() for bl in layer.blobs)
    assert layer.blobs[0].shape == (2, 2, 3, 3) and layer.blobs[1].shape == (2,)


def forward_backward(layer, bottom, top, dy):
    """Forward, then backward of ``dy`` from zeroed param diffs: [top, dx, param diffs]."""
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    for bl in layer.blobs:
        bl.diff[...] = 0
    layer.Backward(top, [True], bottom)
    return [top[0].data.copy(), bottom[0].diff.copy()] + [bl.diff.copy() for bl in layer.blobs]


def test_batch_chunking_gives_the_same_result(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 2, 6, 6))
    lp = conv_param(num_output=3, kernel_size=[3], pad=[1])
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    dy = rng.standard_normal(top[0].shape)

    def run():
        return forward_backward(layer, bottom, top, dy)
    whole = run()
    monkeypatch.setattr(conv_mod, "COL_BUFFER_ELEMENTS", 2 * 18 * 36)  # 2 images per chunk
    assert len(layer._chunks()) == 3
    for a, b in zip(run(), whole):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_32x32_5x5_conv_is_vectorised(monkeypatch):
    """(2,3,32,32) -> 16 channels, 5x5: im2col is one strided copy for the whole batch,
    col2im one strided add per kernel tap; nothing loops per pixel."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    lp = conv_param(num_output=16, kernel_size=[5], pad=[2])
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(lp, bottom, dtype=np.float32)
    calls, im2col_calls = [], []
    real_window = im2col_mod.window
    monkeypatch.setattr(im2col_mod, "window", lambda *a: calls.append(1) or real_window(*a))
    real_im2col = conv_mod.im2col
    monkeypatch.setattr(conv_mod, "im2col",
                        lambda *a, **k: im2col_calls.append(1) or real_im2col(*a, **k))
    layer.Forward(bottom, top)
    assert len(calls) == 0 and len(im2col_calls) == 1
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    # im2col again for the weights, col2im (one add per tap) for the bottom
    assert len(calls) == 25 and len(im2col_calls) == 2
    win = np.lib.stride_tricks.sliding_window_view(
        np.pad(x.astype(np.float64), [(0, 0), (0, 0), (2, 2), (2, 2)]), (5, 5), axis=(2, 3))
    expected = np.einsum("nchwij,ocij->nohw", win, layer.blobs[0].data.astype(np.float64))
    expected += layer.blobs[1].data.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-4, atol=1e-4)


# -- backward -------------------------------------------------------------------------------------
GRAD_CASES = [
    ("pad_stride_dilation", (2, 2, 5, 5), dict(num_output=2, kernel_size=[3], pad=[2],
                                               stride=[2], dilation=[2])),
    ("group_hw", (1, 4, 5, 4), dict(num_output=4, kernel_h=3, kernel_w=2, pad_h=1,
                                    stride_h=1, stride_w=2, group=2)),
    ("1x1_group", (2, 4, 3, 3), dict(num_output=4, kernel_size=[1], group=2)),
    ("depthwise", (2, 3, 4, 4), dict(num_output=3, kernel_size=[3], pad=[1], group=3)),
    ("depthwise_multiplier", (1, 2, 4, 4), dict(num_output=4, kernel_size=[3], group=2)),
    ("3d", (1, 2, 3, 4, 3), dict(num_output=2, kernel_size=[2], pad=[1, 0, 0],
                                 stride=[2, 1, 1])),
]


@pytest.mark.parametrize("name,shape,kw", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients(name, shape, kw):
    x = np.random.default_rng(6).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(conv_param(**kw), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("name,shape,kw", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_one_gemm_per_image(name, shape, kw, monkeypatch):
    """The per-image path (large outputs; here forced for small ones) with several images,
    groups, 1x1, depthwise and 3-D kernels."""
    import caffelite.layer_types.convolution as conv_module
    monkeypatch.setattr(conv_module, "PER_IMAGE_MIN_POSITIONS", 1)
    x = np.random.default_rng(16).standard_normal((2,) + shape[1:])
    bottom = make_blobs([x])
    layer, top = build_layer(conv_param(**kw), bottom)
    assert layer._per_image()
    check_gradients(layer, bottom, top)


def test_gradients_two_bottoms():
    rng = np.random.default_rng(7)
    bottom = make_blobs([rng.standard_normal((1, 2, 4, 4)) for _ in range(2)])
    layer, top = build_layer(conv_param(num_output=2, n_bottom=2, kernel_size=[2],
                                        stride=[2]), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("kernel", [3, 1])
def test_propagate_down_false_and_param_diffs_accumulate(kernel):
    rng = np.random.default_rng(8)
    bottom = make_blobs([rng.standard_normal((2, 2, 4, 4))])
    layer, top = build_layer(conv_param(num_output=3, kernel_size=[kernel]), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    bottom[0].diff[...] = 7.0
    for bl in layer.blobs:
        bl.diff[...] = 0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()
    once = [bl.diff.copy() for bl in layer.blobs]
    assert all(d.any() for d in once)
    layer.Backward(top, [True], bottom)
    for bl, d in zip(layer.blobs, once):
        np.testing.assert_allclose(bl.diff, 2 * d, rtol=1e-12)
    # only the bias wants a gradient: the weight diff stays as it was
    layer.param_propagate_down = [False, True]
    before = layer.blobs[0].diff.copy()
    layer.Backward(top, [False], bottom)
    np.testing.assert_array_equal(layer.blobs[0].diff, before)
    np.testing.assert_allclose(layer.blobs[1].diff, 3 * once[1], rtol=1e-12)


# -- errors ---------------------------------------------------------------------------------------
ERROR_CASES = [
    ("num_output", (1, 2, 5, 5), dict(num_output=None, kernel_size=[3])),
    ("group", (1, 3, 5, 5), dict(num_output=4, kernel_size=[3], group=2)),
    ("group", (1, 4, 5, 5), dict(num_output=3, kernel_size=[3], group=2)),
    ("kernel_size", (1, 2, 5, 5), dict(num_output=2)),
    ("kernel_size", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3, 3, 3])),
    ("kernel_h", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3], kernel_h=3, kernel_w=3)),
    ("kernel_h", (1, 2, 5, 5, 5), dict(num_output=2, kernel_h=3, kernel_w=3)),
    ("stride_h", (1, 2, 5), dict(num_output=2, kernel_size=[3], stride_h=2, stride_w=2)),
    ("pad", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3], pad=[1, 1, 1])),
    ("dilation", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3], dilation=[1, 1, 1])),
    ("nonzero", (1, 2, 5, 5), dict(num_output=2, kernel_h=3)),        # kernel_w left 0
    ("stride", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3], stride=[0])),
    ("stride", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3], stride_w=2)),  # stride_h 0
    ("axis", (1, 2, 5, 5), dict(num_output=2, kernel_size=[3], axis=4)),
    (r"\(1, 2, 2, 5\)", (1, 2, 2, 5), dict(num_output=2, kernel_size=[3])),  # too small
]


@pytest.mark.parametrize("field,shape,kw", ERROR_CASES)
def test_bad_parameters_raise(field, shape, kw):
    with pytest.raises(CaffeliteError, match=rf"layer 'conv' \(type Convolution\).*{field}"):
        build_layer(conv_param(**kw), make_blobs([np.zeros(shape)]))


def test_bad_bottom_shapes_raise():
    layer, top = build_layer(conv_param(num_output=2, kernel_size=[3]),
                             make_blobs([np.zeros((1, 2, 5, 5))]))
    with pytest.raises(CaffeliteError, match=r"conv.*\(1, 3, 5, 5\).*channels"):
        layer.Forward(make_blobs([np.zeros((1, 3, 5, 5))]), top)
    with pytest.raises(CaffeliteError, match=r"conv.*num_axes"):
        layer.Forward(make_blobs([np.zeros((1, 2, 5))]), top)
    with pytest.raises(CaffeliteError, match=r"conv.*\(1, 2, 5, 5\).*\(1, 2, 6, 5\)"):
        build_layer(conv_param(num_output=2, n_bottom=2, kernel_size=[3]),
                    make_blobs([np.zeros((1, 2, 5, 5)), np.zeros((1, 2, 6, 5))]))


def test_preloaded_blobs_are_checked():
    lp = conv_param(num_output=2, kernel_size=[3])
    good_w = lp.blobs.add()
    good_w.shape.dim.extend([2, 2, 3, 3])
    good_w.data.extend(np.arange(36.0))
    with pytest.raises(CaffeliteError, match=r"conv.*preloaded blobs"):
        build_layer(lp, make_blobs([np.zeros((1, 2, 5, 5))]))       # bias missing
    bias = lp.blobs.add()
    bias.shape.dim.extend([3])
    bias.data.extend([1.0, 2.0, 3.0])
    with pytest.raises(CaffeliteError, match=r"conv.*bias shape.*\(2,\).*\(3,\)"):
        build_layer(lp, make_blobs([np.zeros((1, 2, 5, 5))]))
    del bias.data[-1]
    bias.shape.dim[0] = 2
    layer, _ = build_layer(lp, make_blobs([np.zeros((1, 2, 5, 5))]))
    np.testing.assert_array_equal(layer.blobs[0].data.ravel(), np.arange(36.0))


# -- Caffe fixtures -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["conv_1x1_nobias", "conv_dilation", "conv_group",
                                  "conv_pad_stride_hw"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)


@pytest.mark.parametrize("shape,kernel,pad,stride,dilation", IM2COL_CASES)
def test_batch_last_columns_are_the_same_columns(shape, kernel, pad, stride, dilation):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    cols = im2col(x, kernel, pad, stride, dilation)
    last = im2col(x, kernel, pad, stride, dilation, layout="batch_last")
    nk = len(kernel)
    perm = (1,) + tuple(range(2, 2 + nk)) + tuple(range(2 + nk, cols.ndim)) + (0,)
    np.testing.assert_array_equal(last, cols.transpose(perm))
    c = rng.standard_normal(cols.shape)
    back = col2im(c, shape, kernel, pad, stride, dilation)
    back_last = col2im(np.ascontiguousarray(c.transpose(perm)), shape, kernel, pad, stride,
                       dilation, layout="batch_last")
    np.testing.assert_allclose(back_last, back, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,kw", [
    ((3, 4, 9, 9), dict(num_output=6, kernel_size=[3], pad=[1], stride=[2], group=2)),
    ((4, 3, 6, 7), dict(num_output=5, kernel_size=[1])),
    ((2, 2, 5, 5, 4), dict(num_output=3, kernel_size=[2], pad=[1], dilation=[2])),
])
def test_every_gemm_layout_gives_the_same_numbers(monkeypatch, shape, kw):
    """Per-image GEMMs, one GEMM per chunk with batch_inside or batch_last columns, and
    small chunks: all compute the same convolution and gradients."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(conv_param(**kw), bottom)
    dy = rng.standard_normal(top[0].shape)

    def run():
        return forward_backward(layer, bottom, top, dy)
    results = []
    # (per-image threshold, batch_last width, batch chunk, per-image chunk) in elements;
    # the second and the last row cut the batch into chunks of one image
    for per_image, width, col_elems, image_elems in (
            (1, 0, 1 << 23, 1 << 20), (1, 0, 1 << 23, 1), (10 ** 9, 0, 1 << 23, 1 << 20),
            (10 ** 9, 10 ** 9, 1 << 23, 1 << 20), (10 ** 9, 10 ** 9, 1, 1 << 20)):
        monkeypatch.setattr(conv_mod, "PER_IMAGE_MIN_POSITIONS", per_image)
        monkeypatch.setattr(conv_mod, "BATCH_LAST_MAX_WIDTH", width)
        monkeypatch.setattr(conv_mod, "COL_BUFFER_ELEMENTS", col_elems)
        monkeypatch.setattr(conv_mod, "PER_IMAGE_COL_ELEMENTS", image_elems)
        results.append(run())
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
