"""ELU layer: forward vs the piecewise formula, gradients, in place, Caffe fixture."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import assert_in_place_matches, replay


def layer_param(text=""):
    return text_format.Parse('name: "elu" type: "ELU" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())




def elu(x, alpha):
    return np.array([v if v > 0 else alpha * (math.exp(v) - 1)
                     for v in np.ravel(x)]).reshape(np.shape(x))


def elu_grad(x, alpha):
    return np.array([1.0 if v > 0 else alpha * math.exp(v)
                     for v in np.ravel(x)]).reshape(np.shape(x))


def away_from_zero(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 3, shape) * rng.choice([-1, 1], shape)


@pytest.mark.parametrize("alpha,shape", [(None, (2, 3, 4)), (0.5, (7,)), (0.0, (3, 2)),
                                         (-0.7, ()), (2.0, (4, 5))])
def test_forward(alpha, shape):
    x = np.random.default_rng(0).standard_normal(shape) * 2
    text = "" if alpha is None else f"elu_param {{ alpha: {alpha} }}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    layer.Forward(bottom, top)
    a = 1.0 if alpha is None else float(np.float32(alpha))
    np.testing.assert_allclose(top[0].data, elu(x, a), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("alpha", [1.0, 0.3, -0.4])
def test_gradient(alpha):
    x = away_from_zero((2, 3, 4), 1)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"elu_param {{ alpha: {alpha} }}"), bottom)
    check_gradients(layer, bottom, top)


def test_backward_formula_and_propagate_down():
    x = away_from_zero((3, 4), 2)
    dy = np.random.default_rng(3).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param("elu_param { alpha: 0.5 }"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, dy * elu_grad(x, 0.5), rtol=1e-12)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("alpha", [1.0, 0.0, -0.5])
def test_in_place_matches_out_of_place(alpha):
    x = np.append(away_from_zero((20,), 4), [0.0, -0.0])
    dy = np.random.default_rng(5).standard_normal(x.shape)
    text = f"elu_param {{ alpha: {alpha} }}"
    assert_in_place_matches(layer_param(text), x, dy)


def test_float32_stays_float32():
    bottom = make_blobs([np.array([-100.0, -1.0, 0.0, 2.0])], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, [-1.0, math.exp(-1) - 1, 0.0, 2.0], rtol=1e-6)


def test_blob_counts_are_checked():
    with pytest.raises(CaffeliteError, match="elu.*ELU.*bottom"):
        build_layer(layer_param('bottom: "z"'), make_blobs([np.zeros(2), np.zeros(2)]))


def test_fixture_elu(fixtures_dir):
    replay(fixtures_dir, "elu")


def test_fixture_net_unconsumed_outputs(fixtures_dir):
    # a net whose unconsumed outputs include ELU, Power and AbsVal tops
    replay(fixtures_dir, "unconsumed_outputs", kind="nets")
