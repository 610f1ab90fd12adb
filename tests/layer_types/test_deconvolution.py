"""Deconvolution: shapes, scatter reference, adjointness with Convolution, bilinear recipe."""
import numpy as np
import pytest

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import convolution_layer_param, expand


def deconv_param(num_output=3, n_bottom=1, layer_type="Deconvolution", **kw):
    return convolution_layer_param(layer_type, "deconv", num_output, n_bottom, **kw)


def reference_deconv(x, w, b, pad, stride, dilation, group):
    """Scatter every input cell times its kernel into a padded output, then crop the pad."""
    n_sp = x.ndim - 2
    kernel = w.shape[2:]
    pad, stride, dilation = (expand(v, n_sp) for v in (pad, stride, dilation))
    out = [s * (i - 1) + d * (k - 1) + 1 - 2 * p
           for i, k, p, s, d in zip(x.shape[2:], kernel, pad, stride, dilation)]
    og = w.shape[1]
    cg = x.shape[1] // group
    y = np.zeros((x.shape[0], og * group) + tuple(o + 2 * p for o, p in zip(out, pad)))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            g = c // cg
            for pos in np.ndindex(*x.shape[2:]):
                win = tuple(slice(q * s, q * s + d * (k - 1) + 1, d)
                            for q, s, d, k in zip(pos, stride, dilation, kernel))
                y[(n, slice(g * og, (g + 1) * og)) + win] += x[(n, c) + pos] * w[c]
    y = y[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(pad, out))]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * n_sp)
    return y


FORWARD_CASES = [
    ("basic", (2, 3, 4, 5), dict(num_output=2, kernel_size=[3])),
    ("stride_pad", (2, 3, 4, 5), dict(num_output=4, kernel_size=[4], stride=[2], pad=[1])),
    ("hw", (1, 2, 3, 4), dict(num_output=3, kernel_h=3, kernel_w=2, stride_h=2, stride_w=3,
                              pad_h=1, pad_w=0)),
    ("group", (2, 4, 3, 3), dict(num_output=6, kernel_size=[3], stride=[2], group=2)),
    ("dilation", (1, 2, 4, 4), dict(num_output=2, kernel_size=[3], dilation=[2], pad=[1])),
    ("no_bias", (2, 2, 3, 3), dict(num_output=3, kernel_size=[2], bias_term=False)),
    ("1x1", (2, 3, 4, 2), dict(num_output=2, kernel_size=[1])),
    ("1d", (2, 2, 5), dict(num_output=3, kernel_size=[3], stride=[2], pad=[1])),
    ("3d", (1, 2, 3, 2, 3), dict(num_output=2, kernel_size=[2, 3, 2], stride=[2, 1, 2],
                                 pad=[0, 1, 1])),
    ("stride_gt_kernel", (1, 2, 3, 3), dict(num_output=2, kernel_size=[2], stride=[3])),
]


def _geometry(p, n_sp):
    if p.HasField("kernel_h"):
        return (p.pad_h, p.pad_w), (p.stride_h or 1, p.stride_w or 1), (1, 1)
    return (expand(list(p.pad) or [0], n_sp), expand(list(p.stride) or [1], n_sp),
            expand(list(p.dilation) or [1], n_sp))


@pytest.mark.parametrize("name,shape,kw", FORWARD_CASES, ids=[c[0] for c in FORWARD_CASES])
def test_forward_matches_reference(name, shape, kw):
    x = np.random.default_rng(1).standard_normal(shape)
    lp = deconv_param(**kw)
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    p = lp.convolution_param
    w = layer.blobs[0].data
    assert w.shape[:2] == (shape[1], p.num_output // p.group)
    assert len(layer.blobs) == (2 if p.bias_term else 1)
    b = layer.blobs[1].data if p.bias_term else None
    expected = reference_deconv(x, w, b, *_geometry(p, len(shape) - 2), p.group)
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-10)


def test_output_size_formula():
    def out(shape, **kw):
        return build_layer(deconv_param(**kw), make_blobs([np.zeros(shape)]))[1][0].shape
    # s(in - 1) + d(k - 1) + 1 - 2p
    assert out((1, 2, 5, 7), kernel_size=[4], stride=[2], pad=[1]) == (1, 3, 10, 14)
    assert out((1, 2, 5, 7), kernel_size=[3], dilation=[2]) == (1, 3, 9, 11)
    assert out((1, 2, 3, 3), kernel_size=[3], stride=[3], pad=[1]) == (1, 3, 7, 7)


def test_channel_axis_2_and_two_bottoms_share_weights():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, 3, 2, 3, 4)) for _ in range(2)]
    lp = deconv_param(num_output=2, n_bottom=2, kernel_size=[2], stride=[2], axis=2)
    bottom = make_blobs(xs)
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    w, b = (bl.data for bl in layer.blobs)
    for x, t in zip(xs, top):
        assert t.shape == (2, 3, 2, 6, 8)
        expected = reference_deconv(x.reshape(6, 2, 3, 4), w, b, 0, 2, 1, 1)
        np.testing.assert_allclose(t.data.reshape(6, 2, 6, 8), expected, rtol=1e-10)


def test_forward_is_convolution_backward_data():
    """<conv(z; W), x> == <z, deconv(x; W)> for the same weights: the two are adjoint."""
    rng = np.random.default_rng(3)
    geom = dict(kernel_size=[3], stride=[2], pad=[1], group=2, bias_term=False)
    x = rng.standard_normal((2, 4, 3, 4))
    bottom = make_blobs([x])
    deconv, top = build_layer(deconv_param(num_output=6, **geom), bottom)
    deconv.Forward(bottom, top)
    z = rng.standard_normal(top[0].shape)
    zb = make_blobs([z])
    conv, ctop = build_layer(deconv_param(num_output=4, layer_type="Convolution", **geom), zb)
    conv.blobs[0].data[...] = deconv.blobs[0].data
    conv.Forward(zb, ctop)
    assert ctop[0].shape == x.shape
    np.testing.assert_allclose(np.sum(ctop[0].data * x), np.sum(z * top[0].data), rtol=1e-10)


def _interp_matrix(n_in, f):
    """Bilinear (align-corners-false) interpolation weights, zero outside the input."""
    o = np.arange(n_in * f)[:, None]
    i = np.arange(n_in)[None, :]
    return np.maximum(0.0, 1.0 - np.abs((o + 0.5) / f - 0.5 - i))


@pytest.mark.parametrize("f", [2, 3])
def test_bilinear_upsampling_recipe(f):
    C, H, W = 3, 4, 5
    x = np.random.default_rng(4).standard_normal((2, C, H, W))
    lp = deconv_param(num_output=C, group=C, kernel_size=[2 * f - f % 2], stride=[f],
                      pad=[int(np.ceil((f - 1) / 2))], bias_term=False,
                      weight_filler=caffe_pb2.FillerParameter(type="bilinear"))
    lp.param.add(lr_mult=0, decay_mult=0)
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (2, C, f * H, f * W)
    A, B = _interp_matrix(H, f), _interp_matrix(W, f)
    expected = np.einsum("oh,nchw,pw->ncop", A, x, B)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-12)
    # away from the border a constant image stays constant
    ones = make_blobs([np.ones((1, C, H, W))])
    layer.Forward(ones, top)
    np.testing.assert_allclose(top[0].data[:, :, f:-f, f:-f], 1.0, rtol=1e-12)


GRAD_CASES = [
    ("stride_pad", (2, 2, 2, 3), dict(num_output=2, kernel_size=[3], stride=[2], pad=[1])),
    ("group_dilation", (1, 4, 3, 2), dict(num_output=2, kernel_size=[2], dilation=[2],
                                          group=2)),
    ("1x1", (2, 3, 2, 2), dict(num_output=2, kernel_size=[1])),
    ("1d", (2, 2, 3), dict(num_output=2, kernel_size=[3], stride=[2])),
]


@pytest.mark.parametrize("name,shape,kw", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients(name, shape, kw):
    bottom = make_blobs([np.random.default_rng(5).standard_normal(shape)])
    layer, top = build_layer(deconv_param(**kw), bottom)
    check_gradients(layer, bottom, top)


def test_gradients_two_bottoms():
    rng = np.random.default_rng(6)
    bottom = make_blobs([rng.standard_normal((1, 2, 2, 2)) for _ in range(2)])
    layer, top = build_layer(deconv_param(num_output=2, n_bottom=2, kernel_size=[2],
                                          stride=[2]), bottom)
    check_gradients(layer, bottom, top)


def _run_backward(layer, bottom, top, propagate):
    layer.Forward(bottom, top)
    top[0].diff[...] = np.random.default_rng(7).standard_normal(top[0].shape)
    layer.Backward(top, [propagate], bottom)


def test_propagate_down_false_leaves_bottom_diff_but_fills_params():
    bottom = make_blobs([np.random.default_rng(8).standard_normal((2, 2, 3, 3))])
    layer, top = build_layer(deconv_param(kernel_size=[3], stride=[2]), bottom)
    bottom[0].diff[...] = 5.0
    _run_backward(layer, bottom, top, False)
    assert (bottom[0].diff == 5.0).all()
    assert layer.blobs[0].diff.any() and layer.blobs[1].diff.any()


def test_param_diffs_accumulate():
    bottom = make_blobs([np.random.default_rng(9).standard_normal((2, 2, 3, 3))])
    layer, top = build_layer(deconv_param(kernel_size=[3], stride=[2], pad=[1]), bottom)
    _run_backward(layer, bottom, top, True)
    once = [b.diff.copy() for b in layer.blobs]
    dx = bottom[0].diff.copy()
    _run_backward(layer, bottom, top, True)
    for b, d in zip(layer.blobs, once):
        np.testing.assert_allclose(b.diff, 2 * d, rtol=1e-12)
    np.testing.assert_allclose(bottom[0].diff, dx, rtol=1e-12)   # bottom diff is assigned


def test_frozen_weights_get_no_diff():
    bottom = make_blobs([np.random.default_rng(10).standard_normal((1, 2, 3, 3))])
    layer, top = build_layer(deconv_param(kernel_size=[2], stride=[2]), bottom)
    layer.param_propagate_down = [False, False]
    _run_backward(layer, bottom, top, True)
    assert not layer.blobs[0].diff.any() and not layer.blobs[1].diff.any()
    assert bottom[0].diff.any()


def test_float32():
    x = np.random.default_rng(11).standard_normal((2, 3, 4, 4))
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(deconv_param(kernel_size=[4], stride=[2], pad=[1]), bottom,
                             dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    w, b = (bl.data.astype(np.float64) for bl in layer.blobs)
    expected = reference_deconv(x.astype(np.float32).astype(np.float64), w, b, 1, 2, 1, 1)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-5)


ERROR_CASES = [
    ("num_output", dict(num_output=None, kernel_size=[3])),
    ("group 2 must divide", dict(num_output=3, kernel_size=[3], group=2)),
    ("kernel_size", dict(num_output=2)),
    (r"nonzero: kernel \(3, 0\)", dict(num_output=2, kernel_h=3)),
    ("stride", dict(num_output=2, kernel_size=[3], stride=[0])),
    (r"\(1, 2, 1, 1\).*non-positive output size \(-1, -1\)",
     dict(num_output=2, kernel_size=[1], pad=[1])),
]


@pytest.mark.parametrize("message,kw", ERROR_CASES)
def test_bad_parameters_raise(message, kw):
    x = np.zeros((1, 2, 1, 1) if "non-positive" in message else (1, 2, 4, 4))
    with pytest.raises(CaffeliteError,
                       match=rf"layer 'deconv' \(type Deconvolution\).*{message}"):
        build_layer(deconv_param(**kw), make_blobs([x]))


def test_preloaded_weight_shape_is_checked():
    lp = deconv_param(num_output=4, kernel_size=[3])
    lp.blobs.add().shape.dim.extend([4, 2, 3, 3])      # the Convolution layout, not (C_in, ...)
    lp.blobs[0].data.extend([0.0] * 72)
    lp.blobs.add().shape.dim.append(4)
    lp.blobs[1].data.extend([0.0] * 4)
    with pytest.raises(CaffeliteError, match=r"deconv.*weight shape.*\(2, 4, 3, 3\)"):
        build_layer(lp, make_blobs([np.zeros((1, 2, 4, 4))]))


def test_channel_change_on_reshape_raises():
    layer, top = build_layer(deconv_param(kernel_size=[3]), make_blobs([np.zeros((1, 2, 4, 4))]))
    bad = make_blobs([np.zeros((1, 3, 4, 4))])
    with pytest.raises(CaffeliteError, match=r"deconv.*\(1, 3, 4, 4\).*3 channels"):
        layer.Forward(bad, top)


@pytest.mark.parametrize("case", ["deconv_bilinear_group", "deconv_stride2"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
