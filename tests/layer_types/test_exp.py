"""Exp layer: forward vs base^(shift + scale x), base rules, gradients, in place, fixture."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import assert_in_place_matches, replay


def layer_param(base=None, scale=None, shift=None):
    fields = " ".join(f"{k}: {v}" for k, v in
                      (("base", base), ("scale", scale), ("shift", shift)) if v is not None)
    return text_format.Parse('name: "exp" type: "Exp" bottom: "x" top: "y" '
                             f"exp_param {{ {fields} }}", caffe_pb2.LayerParameter())




def reference(x, base, a, b):
    base = math.e if base == -1 else base
    return np.array([base ** (b + a * v) for v in np.ravel(x)]).reshape(np.shape(x))


SETTINGS = [(-1.0, 1.0, 0.0), (-1.0, 0.5, 0.2), (2.0, 1.0, 0.0), (2.0, -1.5, 0.75),
            (0.5, 2.0, -1.0), (10.0, 0.25, 1.0), (1.0, 3.0, 2.0)]


@pytest.mark.parametrize("base,a,b", SETTINGS)
@pytest.mark.parametrize("shape", [(2, 3, 4), ()])
def test_forward(base, a, b, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(base, a, b), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, base, a, b), rtol=1e-6)


def test_defaults_are_exp():
    x = np.random.default_rng(1).standard_normal((3, 4))
    bottom = make_blobs([x])
    lp = text_format.Parse('name: "exp" type: "Exp" bottom: "x" top: "y"',
                           caffe_pb2.LayerParameter())
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, np.exp(x), rtol=1e-15)


@pytest.mark.parametrize("base", [0.0, -2.0, -0.5, "inf", "nan"])
def test_bad_base(base):
    with pytest.raises(CaffeliteError, match="exp.*Exp.*exp_param.base"):
        build_layer(layer_param(base), make_blobs([np.zeros(3)]))


@pytest.mark.parametrize("base,a,b", SETTINGS)
def test_gradient(base, a, b):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(base, a, b), bottom)
    check_gradients(layer, bottom, top)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.random.default_rng(4).standard_normal((3, 4))])
    layer, top = build_layer(layer_param(2.0, 0.5, 1.0), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("base,a,b", SETTINGS)
def test_in_place_matches_out_of_place(base, a, b):
    x = np.random.default_rng(5).standard_normal((3, 5))
    dy = np.random.default_rng(6).standard_normal(x.shape)
    assert_in_place_matches(layer_param(base, a, b), x, dy)


def test_float32_stays_float32():
    bottom = make_blobs([np.array([-1.0, 0.0, 3.0])], dtype=np.float32)
    layer, top = build_layer(layer_param(2.0), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32
    np.testing.assert_allclose(top[0].data, [0.5, 1.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(bottom[0].diff, np.array([0.5, 1.0, 8.0]) * math.log(2),
                               rtol=1e-6)


def test_fixture_exp(fixtures_dir):
    replay(fixtures_dir, "exp")
