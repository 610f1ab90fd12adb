"""Softmax: forward against a loop reference, gradients, in-place use, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "sm" type: "Softmax" bottom: "x" top: "y" {params}',
                             caffe_pb2.LayerParameter())


def reference(x, axis):
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        v = x[idx]
        e = np.exp(v - v.max())
        out[idx] = e / e.sum()
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("shape,axis", [((2, 5, 3, 2), 1), ((2, 3, 4), 2), ((2, 3, 4), -1),
                                        ((4, 3), 0), ((6,), 0)])
def test_forward_matches_reference(shape, axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 3
    layer, top = build_layer(layer_param(f"softmax_param {{ axis: {axis} }}"), make_blobs([x]))
    layer.Forward(make_blobs([x]), top)
    np.testing.assert_allclose(top[0].data, reference(x, axis), rtol=1e-12)


def test_large_inputs_do_not_overflow():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]], dtype=np.float32)
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert np.isfinite(top[0].data).all()
    np.testing.assert_allclose(top[0].data, reference(x, 1), rtol=1e-6)
    assert top[0].data.dtype == np.float32


@pytest.mark.parametrize("shape,axis", [((2, 4, 3), 1), ((2, 3, 4), 2)])
def test_gradient(shape, axis):
    x = np.random.default_rng(1).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"softmax_param {{ axis: {axis} }}"), bottom)
    check_gradients(layer, bottom, top)


def test_in_place_matches_out_of_place():
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    blob = make_blobs([x])
    lp = layer_param()
    lp.top[0] = "x"
    inplace, _ = build_layer(lp, blob, num_top=1)
    inplace.Forward(blob, blob)        # top is the bottom blob
    np.testing.assert_allclose(blob[0].data, top[0].data)
    blob[0].diff[...] = dy
    inplace.Backward(blob, [True], blob)
    np.testing.assert_allclose(blob[0].diff, bottom[0].diff, rtol=1e-12)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.random.default_rng(3).standard_normal((2, 3))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_bad_axis_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'sm'.*softmax_param.axis.*\(2, 3\)"):
        build_layer(layer_param("softmax_param { axis: 2 }"), make_blobs([np.zeros((2, 3))]))


@pytest.mark.parametrize("case", ["softmax_axis1", "softmax_axis2"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
