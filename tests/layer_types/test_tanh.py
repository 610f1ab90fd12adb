"""TanH layer: forward vs np.tanh, gradients, in-place use, Caffe fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(text=""):
    return text_format.Parse('name: "th" type: "TanH" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())




def ref_tanh(x):
    e2 = np.exp(-2 * np.abs(x))
    return np.sign(x) * (1 - e2) / (1 + e2)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,), ()])
def test_forward(shape):
    x = np.random.default_rng(0).standard_normal(shape) * 2
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, ref_tanh(x), rtol=1e-12, atol=1e-15)


def test_forward_float32_saturates():
    x = np.array([-500.0, -1.0, 0.0, 1.0, 500.0])
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    with np.errstate(all="raise"):
        layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, ref_tanh(x), rtol=1e-6)


def test_gradient():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top)


def test_backward_formula_and_propagate_down():
    x = np.random.default_rng(2).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    dy = np.random.default_rng(3).standard_normal((3, 4))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, dy * (1 - ref_tanh(x) ** 2), rtol=1e-12)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_in_place():
    x = np.random.default_rng(4).standard_normal((2, 5))
    blob = make_blobs([x])[0]
    layer = create_layer(layer_param())
    layer.SetUp([blob], [blob])
    layer.Forward([blob], [blob])
    np.testing.assert_allclose(blob.data, ref_tanh(x), rtol=1e-12)
    dy = np.random.default_rng(5).standard_normal((2, 5))
    blob.diff[...] = dy
    layer.Backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, dy * (1 - ref_tanh(x) ** 2), rtol=1e-12)


def test_blob_counts_are_checked():
    lp = text_format.Parse('name: "th" type: "TanH" bottom: "x" top: "a" top: "b"',
                           caffe_pb2.LayerParameter())
    with pytest.raises(CaffeliteError, match="th.*TanH.*top"):
        build_layer(lp, make_blobs([np.zeros(2)]))


def test_fixture_tanh(fixtures_dir):
    replay(fixtures_dir, "tanh")
