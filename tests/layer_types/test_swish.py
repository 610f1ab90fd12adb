"""Swish layer: forward vs x * sigmoid(beta x), gradients, in place."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import assert_in_place_matches


def layer_param(text=""):
    return text_format.Parse('name: "sw" type: "Swish" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())


def swish(x, beta):
    return np.array([v / (1 + math.exp(-beta * v)) for v in np.ravel(x)]).reshape(np.shape(x))


@pytest.mark.parametrize("beta,shape", [(None, (2, 3, 4)), (0.5, (7,)), (2.0, ()),
                                        (0.0, (3, 2)), (-1.5, (4,))])
def test_forward(beta, shape):
    x = np.random.default_rng(0).standard_normal(shape) * 3
    text = "" if beta is None else f"swish_param {{ beta: {beta} }}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, swish(x, 1.0 if beta is None else beta),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("beta", [1.0, 0.3, 2.5])
def test_gradient(beta):
    x = np.random.default_rng(1).standard_normal((2, 3, 4)) * 2
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"swish_param {{ beta: {beta} }}"), bottom)
    check_gradients(layer, bottom, top)


def test_backward_formula_and_propagate_down():
    x = np.random.default_rng(2).standard_normal((3, 4))
    dy = np.random.default_rng(3).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param("swish_param { beta: 1.5 }"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    s = 1 / (1 + np.exp(-1.5 * x))
    np.testing.assert_allclose(bottom[0].diff, dy * (s + 1.5 * x * s * (1 - s)), rtol=1e-12)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_in_place_matches_out_of_place():
    x = np.random.default_rng(4).standard_normal((3, 5)) * 3
    dy = np.random.default_rng(5).standard_normal(x.shape)
    text = "swish_param { beta: 0.75 }"
    assert_in_place_matches(layer_param(text), x, dy)


def test_float32_saturates_without_overflow():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, [0.0, 0.0, 0.0, 50.0, 1000.0], atol=1e-6)


def test_blob_counts_are_checked():
    with pytest.raises(CaffeliteError, match="sw.*Swish.*bottom"):
        build_layer(layer_param('bottom: "z"'), make_blobs([np.zeros(2), np.zeros(2)]))
