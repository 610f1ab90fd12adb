"""LSTMUnit layer: one LSTM step against an element-wise reference, gradients, errors."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param():
    return text_format.Parse('name: "unit" type: "LSTMUnit" bottom: "c_prev" bottom: "x" '
                             'bottom: "cont" top: "c" top: "h"', caffe_pb2.LayerParameter())


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def ref_unit(c_prev, x, cont):
    """Caffe's LSTMUnit CPU loop, element by element."""
    _, n, h = c_prev.shape
    c = np.zeros_like(c_prev)
    hh = np.zeros_like(c_prev)
    for b in range(n):
        for d in range(h):
            i = sig(x[0, b, d])
            f = 0.0 if cont[0, b] == 0 else cont[0, b] * sig(x[0, b, h + d])
            o = sig(x[0, b, 2 * h + d])
            g = math.tanh(x[0, b, 3 * h + d])
            c[0, b, d] = f * c_prev[0, b, d] + i * g
            hh[0, b, d] = o * math.tanh(c[0, b, d])
    return c, hh


def inputs(n=3, h=4, seed=0, cont=None):
    rng = np.random.default_rng(seed)
    c_prev = rng.standard_normal((1, n, h))
    x = rng.standard_normal((1, n, 4 * h)) * 1.5
    cont = np.array([[0.0] + [1.0] * (n - 1)]) if cont is None else np.asarray(cont)
    return c_prev, x, cont


@pytest.mark.parametrize("n,h,cont", [(3, 4, None), (1, 1, [[1.0]]), (2, 3, [[0.0, 0.0]]),
                                      (2, 2, [[0.5, 2.0]])])
def test_forward(n, h, cont):
    c_prev, x, cont = inputs(n, h, cont=cont)
    bottom = make_blobs([c_prev, x, cont])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    ref_c, ref_h = ref_unit(c_prev, x, cont)
    assert top[0].shape == (1, n, h) and top[1].shape == (1, n, h)
    np.testing.assert_allclose(top[0].data, ref_c, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(top[1].data, ref_h, rtol=1e-12, atol=1e-14)


def test_float32_large_inputs_do_not_overflow():
    c_prev, x, cont = inputs(2, 2)
    x[0, 0, :] = [-500, 500, -500, 500, 500, -500, 500, -500]
    bottom = make_blobs([c_prev, x, cont], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    with np.errstate(all="raise"):
        layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    ref_c, ref_h = ref_unit(c_prev.astype(np.float32), x.astype(np.float32), cont)
    np.testing.assert_allclose(top[0].data, ref_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(top[1].data, ref_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cont", [[[0.0, 1.0, 1.0]], [[1.0, 0.0, 1.0]], [[0.5, 1.0, 2.0]]])
def test_gradient(cont):
    # Also with a fractional cont: the forget gate's gradient carries the cont factor, as in
    # Caffe's GPU kernel (its CPU code omits it, which only matters for cont not in {0, 1}).
    bottom = make_blobs(list(inputs(3, 2, seed=1, cont=cont)))
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0, 1])


def test_backward_matches_caffe_formulas():
    c_prev, x, cont = inputs(2, 3, seed=2, cont=[[1.0, 0.0]])
    bottom = make_blobs([c_prev, x, cont])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    rng = np.random.default_rng(3)
    dc, dh = rng.standard_normal((2, 1, 2, 3))
    top[0].diff[...] = dc
    top[1].diff[...] = dh
    layer.Backward(top, [True, True, False], bottom)
    h = 3
    s = lambda v: 1 / (1 + np.exp(-v))
    i, f, o = s(x[0, :, :h]), s(x[0, :, h:2 * h]), s(x[0, :, 2 * h:3 * h])
    g = np.tanh(x[0, :, 3 * h:])
    f = f * cont[0][:, None]
    tc = np.tanh(top[0].data[0])
    term = dc[0] + dh[0] * o * (1 - tc ** 2)
    np.testing.assert_allclose(bottom[0].diff[0], term * f, rtol=1e-12, atol=1e-15)
    expect = np.concatenate([term * g * i * (1 - i), term * c_prev[0] * f * (1 - f),
                             dh[0] * tc * o * (1 - o), term * i * (1 - g ** 2)], axis=1)
    np.testing.assert_allclose(bottom[1].diff[0], expect, rtol=1e-12, atol=1e-15)


def test_propagate_down_false_leaves_diffs():
    bottom = make_blobs(list(inputs(2, 2, seed=4)))
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    top[1].diff[...] = 1.0
    for b in bottom:
        b.diff[...] = 7.0
    layer.Backward(top, [False, True, False], bottom)
    assert (bottom[0].diff == 7.0).all() and not (bottom[1].diff == 7.0).all()
    bottom[1].diff[...] = 7.0
    layer.Backward(top, [True, False, False], bottom)
    assert (bottom[1].diff == 7.0).all() and not (bottom[0].diff == 7.0).all()
    assert (bottom[2].diff == 7.0).all()


def test_no_gradient_to_cont():
    bottom = make_blobs(list(inputs(2, 2)))
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    assert not layer.allow_force_backward(2)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(1)
    with pytest.raises(CaffeliteError, match="unit.*LSTMUnit.*cont"):
        layer.Backward(top, [True, True, True], bottom)


@pytest.mark.parametrize("shapes,match", [
    (((1, 2, 3), (1, 2, 12), (1, 2, 1)), "cont"),
    (((1, 2, 3), (1, 2, 10), (1, 2)), "4 \\* H"),
    (((2, 2, 3), (2, 2, 12), (2, 2)), "single time step"),
    (((1, 2, 3), (1, 3, 12), (1, 2)), "number of streams"),
    (((2, 3), (1, 2, 12), (1, 2)), "c_prev"),
])
def test_bad_shapes(shapes, match):
    bottom = make_blobs([np.zeros(s) for s in shapes])
    with pytest.raises(CaffeliteError, match="unit.*LSTMUnit.*" + match):
        build_layer(layer_param(), bottom)


def test_blob_counts():
    lp = text_format.Parse('name: "unit" type: "LSTMUnit" bottom: "c" bottom: "x" top: "c" '
                           'top: "h"', caffe_pb2.LayerParameter())
    with pytest.raises(CaffeliteError, match="unit.*bottom"):
        build_layer(lp, make_blobs([np.zeros((1, 1, 1)), np.zeros((1, 1, 4))]))
