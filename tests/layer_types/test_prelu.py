"""PReLU layer: forward vs a per-channel loop, slope and bottom gradients, accumulation,
in place, shape errors, Caffe fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay

GAUSS = 'filler { type: "gaussian" mean: 0.2 std: 0.3 }'


def layer_param(text=""):
    return text_format.Parse('name: "prelu" type: "PReLU" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())




def slopes_per_channel(layer, channels):
    a = np.asarray(layer.blobs[0].data).reshape(-1)
    return np.repeat(a, channels) if a.size == 1 else a


def reference(x, a):
    y = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        v = x[idx]
        y[idx] = v if v > 0 else a[idx[1]] * v
    return y


def away_from_zero(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 2, shape) * rng.choice([-1, 1], shape)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3), (2, 5, 3)])
def test_forward(shared, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    text = f"prelu_param {{ channel_shared: {str(shared).lower()} {GAUSS} }}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    assert layer.blobs[0].shape == (() if shared else (shape[1],))
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, slopes_per_channel(layer, shape[1])),
                               rtol=1e-15)


def test_default_filler_is_quarter():
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    for text in ("", "prelu_param { channel_shared: true }"):
        bottom = make_blobs([x], dtype=np.float32)
        layer, top = build_layer(layer_param(text), bottom, dtype=np.float32)
        assert (layer.blobs[0].data == 0.25).all()
        assert layer.blobs[0].data.dtype == np.float32


@pytest.mark.parametrize("shared", [False, True])
def test_gradient(shared):
    x = away_from_zero((2, 3, 2, 3), 2)
    text = f"prelu_param {{ channel_shared: {str(shared).lower()} {GAUSS} }}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("shared", [False, True])
def test_backward_formula(shared):
    x = away_from_zero((2, 3, 4), 3)
    dy = np.random.default_rng(4).standard_normal(x.shape)
    text = f"prelu_param {{ channel_shared: {str(shared).lower()} {GAUSS} }}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    a = slopes_per_channel(layer, 3)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    dx = np.empty_like(x)
    da = np.zeros(3)
    for n, c, k in np.ndindex(x.shape):
        v = x[n, c, k]
        dx[n, c, k] = dy[n, c, k] * (1.0 if v > 0 else a[c])
        da[c] += dy[n, c, k] * v * (v <= 0)
    np.testing.assert_allclose(bottom[0].diff, dx, rtol=1e-13)
    expected_da = da.sum() if shared else da
    np.testing.assert_allclose(layer.blobs[0].diff, expected_da, rtol=1e-12)


def test_param_diff_accumulates_and_propagate_down_false():
    x = away_from_zero((2, 3, 4), 5)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"prelu_param {{ {GAUSS} }}"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = np.random.default_rng(6).standard_normal(x.shape)
    layer.blobs[0].diff[...] = 0
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    once = layer.blobs[0].diff.copy()
    assert (bottom[0].diff == 7.0).all() and np.abs(once).sum() > 0
    layer.Backward(top, [False], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * once, rtol=1e-15)
    layer.param_propagate_down = [False]  # e.g. lr_mult 0: slopes untouched
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * once, rtol=1e-15)


@pytest.mark.parametrize("shared", [False, True])
def test_in_place_matches_out_of_place(shared):
    x = away_from_zero((2, 3, 4), 7)
    dy = np.random.default_rng(8).standard_normal(x.shape)
    text = f"prelu_param {{ channel_shared: {str(shared).lower()} {GAUSS} }}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    blob = make_blobs([x])[0]
    ip = create_layer(layer_param(text))
    ip.blobs.append(make_blobs([layer.blobs[0].data])[0])  # the same slopes, preloaded
    ip.SetUp([blob], [blob])
    ip.Forward([blob], [blob])
    np.testing.assert_array_equal(blob.data, top[0].data)
    blob.diff[...] = dy
    ip.Backward([blob], [True], [blob])
    np.testing.assert_array_equal(blob.diff, bottom[0].diff)
    np.testing.assert_array_equal(ip.blobs[0].diff, layer.blobs[0].diff)


def test_preloaded_legacy_shape_is_accepted_by_count():
    lp = layer_param()
    layer = create_layer(lp)
    layer.blobs.append(make_blobs([np.array([[[[0.1, 0.2, 0.3]]]])])[0])  # (1, 1, 1, 3)
    x = away_from_zero((2, 3, 2), 9)
    bottom = make_blobs([x])
    top = make_blobs([np.zeros(0)])
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, [0.1, 0.2, 0.3]), rtol=1e-15)


def test_errors():
    with pytest.raises(CaffeliteError, match=r"prelu.*PReLU.*at least 2 axes.*\(5,\)"):
        build_layer(layer_param(), make_blobs([np.zeros(5)]))
    layer = create_layer(layer_param())
    layer.blobs.append(make_blobs([np.ones(4)])[0])
    with pytest.raises(CaffeliteError, match=r"prelu.*PReLU.*slope blob shape \(4,\).*\(2, 3\)"):
        layer.SetUp(make_blobs([np.zeros((2, 3))]), make_blobs([np.zeros(0)]))
    bottom = make_blobs([np.zeros((2, 3, 4))])
    layer, top = build_layer(layer_param(), bottom)
    bottom[0].reshape((2, 5, 4))
    with pytest.raises(CaffeliteError, match=r"prelu.*PReLU.*\(2, 5, 4\) has 5 channels"):
        layer.Forward(bottom, top)


def test_shared_slope_allows_any_channel_count():
    bottom = make_blobs([away_from_zero((2, 3, 4), 10)])
    layer, top = build_layer(layer_param("prelu_param { channel_shared: true }"), bottom)
    x = away_from_zero((2, 7), 11)
    bottom[0].reshape((2, 7))
    bottom[0].data[...] = x
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, np.where(x > 0, x, 0.25 * x), rtol=1e-15)


# A chain of in-place layers on one blob. Each layer whose backward needs x keeps its own
# copy (or mask) in place; ELU reads y, as Caffe, so it must be the last to rewrite the blob.
CHAIN = """
force_backward: true
layer {{ name: "in" type: "Input" top: "x" input_param {{ shape {{ dim: 2 dim: 3 dim: 4 }} }} }}
layer {{ name: "pow" type: "Power" bottom: "x" top: "p" power_param {{ power: 3 shift: -0.3 }} }}
layer {{ name: "prelu" type: "PReLU" bottom: "p" top: "{0}"
  prelu_param {{ filler {{ type: "uniform" min: 0.1 max: 0.9 }} }} }}
layer {{ name: "bnll" type: "BNLL" bottom: "{0}" top: "{1}" }}
layer {{ name: "log" type: "Log" bottom: "{1}" top: "{2}" log_param {{ shift: 0.5 }} }}
layer {{ name: "clip" type: "Clip" bottom: "{2}" top: "{3}" clip_param {{ min: -0.4 max: 1.2 }} }}
layer {{ name: "elu" type: "ELU" bottom: "{3}" top: "{4}" elu_param {{ alpha: 0.5 }} }}
"""


def test_in_place_chain_in_a_net():
    import caffelite as caffe
    x = away_from_zero((2, 3, 4), 12)
    dy = np.random.default_rng(13).standard_normal(x.shape)
    results = []
    for tops in (("a", "b", "c", "d", "e"), ("p",) * 5):
        param = text_format.Parse(CHAIN.format(*tops), caffe_pb2.NetParameter())
        caffe.set_random_seed(5)
        net = caffe.Net(param)
        net.blobs["x"].data[...] = x
        net.forward()
        out = net.blobs[tops[-1]]
        y = out.data.copy()
        out.diff[...] = dy
        net.backward()
        results.append((y, net.blobs["x"].diff.copy(), net.params["prelu"][0].diff.copy()))
    for separate, in_place in zip(*results):
        np.testing.assert_allclose(in_place, separate, rtol=1e-5, atol=1e-7)


def test_fixture_prelu(fixtures_dir):
    replay(fixtures_dir, "prelu")


def test_fixture_prelu_channel_shared(fixtures_dir):
    replay(fixtures_dir, "prelu_channel_shared")
