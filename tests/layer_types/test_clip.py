"""Clip layer: forward vs clamp, inclusive gradient mask, required params, in place."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(text="clip_param { min: -0.5 max: 1.25 }"):
    return text_format.Parse('name: "clip" type: "Clip" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())


def clamp(x, lo, hi):
    return np.array([lo if v < lo else hi if v > hi else v
                     for v in np.ravel(x)]).reshape(np.shape(x))


@pytest.mark.parametrize("lo,hi,shape", [(-0.5, 1.25, (2, 3, 4)), (0.0, 0.0, (7,)),
                                         (-3.0, -1.0, ()), (0.25, 6.0, (4, 5))])
def test_forward(lo, hi, shape):
    x = np.random.default_rng(0).standard_normal(shape) * 2
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"clip_param {{ min: {lo} max: {hi} }}"), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, clamp(x, lo, hi))


def test_gradient_mask_is_inclusive():
    x = np.array([-1.0, -0.5, 0.0, 1.25, 2.0])
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    top[0].diff[...] = [1.0, 2.0, 3.0, 4.0, 5.0]
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [0.0, 2.0, 3.0, 4.0, 0.0])
    assert bottom[0].diff.dtype == np.float32


def test_gradient():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 3, (2, 3, 4))
    x[np.abs(x + 0.5) < 0.05] = 0.3  # keep away from the bounds (kinks)
    x[np.abs(x - 1.25) < 0.05] = 0.3
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


def test_in_place_keeps_the_mask_of_x():
    x = np.array([-1.0, -0.5, 0.0, 1.25, 2.0, 0.7])
    dy = np.arange(1.0, 7.0)
    blob = make_blobs([x])[0]
    layer = create_layer(layer_param())
    layer.SetUp([blob], [blob])
    layer.Forward([blob], [blob])
    np.testing.assert_array_equal(blob.data, clamp(x, -0.5, 1.25))
    blob.diff[...] = dy
    layer.Backward([blob], [True], [blob])
    # the clamped -1 and 2 look like the bounds in y, but x was outside: no gradient
    np.testing.assert_array_equal(blob.diff, [0.0, 2.0, 3.0, 4.0, 0.0, 6.0])


@pytest.mark.parametrize("text,field", [("", "clip_param"), ("clip_param { }", "min and"),
                                        ("clip_param { min: 0 }", "clip_param.max"),
                                        ("clip_param { max: 1 }", "clip_param.min")])
def test_required_fields(text, field):
    with pytest.raises(CaffeliteError, match=f"clip.*Clip.*{field}"):
        build_layer(layer_param(text), make_blobs([np.zeros(3)]))


def test_min_above_max():
    with pytest.raises(CaffeliteError, match=r"clip.*Clip.*clip_param.min \(2.0\).*max"):
        build_layer(layer_param("clip_param { min: 2 max: 1 }"), make_blobs([np.zeros(3)]))


def test_blob_counts_are_checked():
    with pytest.raises(CaffeliteError, match="clip.*Clip.*bottom"):
        build_layer(layer_param('bottom: "z" clip_param { min: 0 max: 1 }'),
                    make_blobs([np.zeros(2), np.zeros(2)]))
