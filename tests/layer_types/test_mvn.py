"""MVN: forward against a loop reference, Caffe's backward formula, gradients, errors,
fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="", top="y"):
    return text_format.Parse(f'name: "mvn" type: "MVN" bottom: "x" top: "{top}" '
                             f'mvn_param {{ {params} }}', caffe_pb2.LayerParameter())


def reference(x, normalize_variance=True, across_channels=False, eps=1e-9):
    x = np.asarray(x, dtype=np.float64)
    shape4 = tuple(x.shape) + (1,) * (4 - x.ndim)
    x = x.reshape(shape4)
    out = np.empty_like(x)
    for n in range(shape4[0]):
        groups = [slice(None)] if across_channels else [c for c in range(shape4[1])]
        for c in groups:
            v = x[n, c]
            centred = v - v.mean()
            if normalize_variance:
                centred = centred / (np.sqrt((centred ** 2).mean()) + eps)
            out[n, c] = centred
    return out


SETTINGS = [("", {}),
            ("across_channels: true", {"across_channels": True}),
            ("normalize_variance: false", {"normalize_variance": False}),
            ("normalize_variance: false across_channels: true",
             {"normalize_variance": False, "across_channels": True}),
            ("eps: 0.5", {"eps": 0.5})]


@pytest.mark.parametrize("params,kw", SETTINGS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 3)])
def test_forward_matches_reference(params, kw, shape):
    x = np.random.default_rng(0).standard_normal(shape) * 2 + 1
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(params), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, **kw), rtol=1e-7, atol=1e-7)


def test_fewer_axes_give_a_4d_top():
    """Caffe reshapes the top to (num, channels, height, width)."""
    x = np.random.default_rng(1).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (3, 4, 1, 1)
    # each (n, c) group holds one value: centred to 0
    np.testing.assert_array_equal(top[0].data, 0)
    layer2, top2 = build_layer(layer_param("across_channels: true"), bottom)
    layer2.Forward(bottom, top2)
    np.testing.assert_allclose(top2[0].data, reference(x, across_channels=True), atol=1e-7)


def test_constant_group_gives_zeros_not_nan():
    x = np.full((1, 2, 3, 3), 4.0, dtype=np.float32)
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_array_equal(top[0].data, 0)


def caffe_backward(y, dy, scale, rows):
    """Caffe's mvn_layer.cpp backward written per group, with the divisor s."""
    y, dy = y.reshape(rows, -1), dy.reshape(rows, -1)
    out = np.empty_like(dy)
    for r in range(rows):
        out[r] = (dy[r] - dy[r].mean() - y[r] * (dy[r] * y[r]).mean()) / scale[r]
    return out


def test_backward_is_caffes_formula_even_with_large_eps():
    """With eps > 0, Caffe's backward is not the exact gradient; we match Caffe."""
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 3, 2, 3)), rng.standard_normal((2, 3, 2, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param("eps: 0.5"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xr = x.reshape(6, -1)
    scale = np.sqrt(((xr - xr.mean(1, keepdims=True)) ** 2).mean(1)) + 0.5
    expected = caffe_backward(top[0].data, dy, scale, 6).reshape(x.shape)
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("params", [s for s, _ in SETTINGS[:4]])
def test_gradient(params):
    x = np.random.default_rng(3).standard_normal((2, 3, 2, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(params), bottom)
    check_gradients(layer, bottom, top)


def test_in_place_matches_out_of_place():
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    blob = make_blobs([x])
    inplace, _ = build_layer(layer_param(top="x"), blob, num_top=1)
    inplace.Forward(blob, blob)
    np.testing.assert_allclose(blob[0].data, top[0].data, rtol=1e-12)
    blob[0].diff[...] = dy
    inplace.Backward(blob, [True], blob)
    np.testing.assert_allclose(blob[0].diff, bottom[0].diff, rtol=1e-12, atol=1e-12)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.random.default_rng(5).standard_normal((2, 2, 2, 2))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_more_than_4_axes_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'mvn'.*MVN.*\(1, 2, 3, 4, 5\)"):
        build_layer(layer_param(), make_blobs([np.zeros((1, 2, 3, 4, 5))]))


@pytest.mark.parametrize("case", ["mvn", "mvn_across_channels"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
