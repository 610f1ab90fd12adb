"""BNLL layer: forward vs ln(1 + e^x), Caffe's clipped gradient, in place, Caffe fixture."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import assert_in_place_matches, replay


def layer_param(text=""):
    return text_format.Parse('name: "bnll" type: "BNLL" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())




def softplus(v):  # Caffe's two-branch form, scalar by scalar
    return v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


def caffe_grad(v):
    e = math.exp(min(v, 50.0))
    return e / (e + 1)


@pytest.mark.parametrize("shape", [(2, 3, 4), (6,), ()])
def test_forward(shape):
    x = np.random.default_rng(0).standard_normal(shape) * 4
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    expected = np.array([softplus(v) for v in np.ravel(x)]).reshape(shape)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-13, atol=1e-300)


def test_extremes_without_overflow():
    x = np.array([-1000.0, -60.0, -1e-3, 0.0, 1e-3, 60.0, 1000.0])
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        layer.Forward(bottom, top)
        top[0].diff[...] = 1.0
        layer.Backward(top, [True], bottom)
    exp32 = np.array([softplus(v) for v in x.astype(np.float32).astype(np.float64)])
    np.testing.assert_allclose(top[0].data, exp32, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(bottom[0].diff, [caffe_grad(v) for v in x], rtol=1e-6)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32


def test_backward_formula():
    x = np.random.default_rng(2).standard_normal((3, 4)) * 5
    dy = np.random.default_rng(3).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    expected = dy * np.array([caffe_grad(v) for v in x.ravel()]).reshape(x.shape)
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-13)


def test_gradient():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)) * 3
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.random.default_rng(2).standard_normal((3, 4))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_in_place_matches_out_of_place(dtype):
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.standard_normal(20) * 6, [-80.0, -30.0, 0.0, 30.0, 80.0]])
    dy = rng.standard_normal(x.shape)
    assert_in_place_matches(layer_param(), x, dy, dtype)


def test_blob_counts_are_checked():
    with pytest.raises(CaffeliteError, match="bnll.*BNLL.*bottom"):
        build_layer(layer_param('bottom: "z"'), make_blobs([np.zeros(2), np.zeros(2)]))


def test_fixture_bnll(fixtures_dir):
    replay(fixtures_dir, "bnll")
