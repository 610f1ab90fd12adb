"""Threshold layer: forward vs a step, no backward, in place, Caffe fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError, LayerError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, make_blobs

from layer_case import replay


def layer_param(text=""):
    return text_format.Parse('name: "thr" type: "Threshold" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())




def step(x, t):
    return np.array([1.0 if v > t else 0.0 for v in np.ravel(x)]).reshape(np.shape(x))


@pytest.mark.parametrize("t,shape", [(0.0, (2, 3, 4)), (0.3, (7,)), (-1.5, ()), (1.0, (5,))])
def test_forward(t, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    if shape == (5,):
        x = np.array([0.5, 1.0, 1.0000001, 2.0, -3.0])  # x == t is not above it
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"threshold_param {{ threshold: {t} }}"), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, step(x, t))


def test_default_threshold_is_zero():
    bottom = make_blobs([np.array([-1.0, 0.0, 1e-9])], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [0, 0, 1])
    assert top[0].data.dtype == np.float32


def test_no_backward():
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    with pytest.raises(LayerError, match="thr.*Threshold.*no backward"):
        layer.Backward(top, [True], bottom)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)  # nothing requested: nothing happens
    assert (bottom[0].diff == 7.0).all()


def test_in_place():
    x = np.random.default_rng(4).standard_normal((2, 5))
    blob = make_blobs([x])[0]
    layer = create_layer(layer_param("threshold_param { threshold: 0.2 }"))
    layer.SetUp([blob], [blob])
    layer.Forward([blob], [blob])
    np.testing.assert_array_equal(blob.data, step(x, 0.2))


def test_blob_counts_are_checked():
    with pytest.raises(CaffeliteError, match="thr.*Threshold.*top"):
        build_layer(layer_param('top: "z"'), make_blobs([np.zeros(2)]))


def test_fixture_threshold(fixtures_dir):
    replay(fixtures_dir, "threshold")
