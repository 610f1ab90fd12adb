"""AbsVal layer: forward vs |x|, gradients, in-place refusal, Caffe fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(text=""):
    return text_format.Parse('name: "abs" type: "AbsVal" bottom: "x" top: "y" ' + text,
                             caffe_pb2.LayerParameter())




@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), ()])
def test_forward(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    expected = np.array([v if v >= 0 else -v for v in np.ravel(x)]).reshape(shape)
    np.testing.assert_array_equal(top[0].data, expected)


def test_backward_sign_of_zero_is_zero():
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    top[0].diff[...] = [1.5, 2.0, 3.0, 4.0]
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [-1.5, 0, 0, 4.0])
    assert bottom[0].diff.dtype == np.float32


def test_gradient():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 2, (2, 3, 4)) * rng.choice([-1, 1], (2, 3, 4))  # away from 0
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


def test_in_place_is_refused():
    blob = make_blobs([np.ones((2, 3))])[0]
    layer = create_layer(layer_param())
    with pytest.raises(CaffeliteError, match="abs.*AbsVal.*in-place"):
        layer.SetUp([blob], [blob])


def test_blob_counts_are_checked():
    with pytest.raises(CaffeliteError, match="abs.*AbsVal.*bottom"):
        build_layer(layer_param('bottom: "z"'), make_blobs([np.zeros(2), np.zeros(2)]))


def test_fixture_absval(fixtures_dir):
    replay(fixtures_dir, "absval")
