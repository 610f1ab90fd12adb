"""Log layer: forward vs log_base(shift + scale x), base rules, gradients, in place,
Caffe fixture."""
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
    return text_format.Parse('name: "log" type: "Log" bottom: "x" top: "y" '
                             f"log_param {{ {fields} }}", caffe_pb2.LayerParameter())




def reference(x, base, a, b):
    f = math.log if base == -1 else (lambda v: math.log(v, base))
    return np.array([f(b + a * v) for v in np.ravel(x)]).reshape(np.shape(x))


def positive_inner(shape, a, b, seed):
    """x with shift + scale * x in [0.1, 3], inside the log's domain."""
    inner = np.random.default_rng(seed).uniform(0.1, 3.0, shape)
    return (inner - b) / a


SETTINGS = [(-1.0, 1.0, 0.0), (-1.0, 1.0, 2.0), (2.0, 1.0, 0.0), (10.0, -1.5, 0.75),
            (0.5, 2.0, -1.0), (-1.0, 0.25, 1.0)]


@pytest.mark.parametrize("base,a,b", SETTINGS)
@pytest.mark.parametrize("shape", [(2, 3, 4), ()])
def test_forward(base, a, b, shape):
    x = positive_inner(shape, a, b, 0)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(base, a, b), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, base, a, b), rtol=1e-6, atol=1e-12)


def test_defaults_are_ln():
    x = np.random.default_rng(1).uniform(0.1, 5, (3, 4))
    bottom = make_blobs([x])
    lp = text_format.Parse('name: "log" type: "Log" bottom: "x" top: "y"',
                           caffe_pb2.LayerParameter())
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, np.log(x), rtol=1e-15)


@pytest.mark.parametrize("base", [0.0, -2.0, -0.5, "inf", "nan", 1.0])
def test_bad_base(base):
    with pytest.raises(CaffeliteError, match="log.*Log.*log_param.base"):
        build_layer(layer_param(base), make_blobs([np.ones(3)]))


@pytest.mark.parametrize("base,a,b", SETTINGS)
def test_gradient(base, a, b):
    x = positive_inner((2, 3, 4), a, b, 3)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(base, a, b), bottom)
    check_gradients(layer, bottom, top)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([positive_inner((3, 4), 1.0, 0.0, 4)])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("base,a,b", SETTINGS)
def test_in_place_matches_out_of_place(base, a, b):
    x = positive_inner((3, 5), a, b, 5)
    dy = np.random.default_rng(6).standard_normal(x.shape)
    assert_in_place_matches(layer_param(base, a, b), x, dy)


def test_float32_stays_float32():
    bottom = make_blobs([np.array([0.5, 1.0, 8.0])], dtype=np.float32)
    layer, top = build_layer(layer_param(2.0), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32
    np.testing.assert_allclose(top[0].data, [-1.0, 0.0, 3.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bottom[0].diff, 1 / (np.array([0.5, 1.0, 8.0]) * math.log(2)),
                               rtol=1e-6)


def test_fixture_log(fixtures_dir):
    replay(fixtures_dir, "log")
