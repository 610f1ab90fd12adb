"""BatchReindex: gather against a loop reference, accumulating backward, gradients, errors."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param():
    return text_format.Parse('name: "br" type: "BatchReindex" bottom: "x" bottom: "idx" '
                             'top: "y"', caffe_pb2.LayerParameter())


def setup(x, idx):
    bottom = make_blobs([x, idx])
    layer, top = build_layer(layer_param(), bottom)
    return layer, bottom, top


@pytest.mark.parametrize("idx", [[2, 0, 1], [1, 1, 1, 3, 0], [3], []])
def test_forward_matches_reference(idx):
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    layer, bottom, top = setup(x, np.array(idx, dtype=np.float64))
    layer.Forward(bottom, top)
    expected = np.array([x[int(i)] for i in idx]).reshape((len(idx), 2, 3))
    assert top[0].shape == expected.shape
    np.testing.assert_array_equal(top[0].data, expected)


def test_float_indices_truncate():
    x = np.arange(6.0).reshape(3, 2)
    layer, bottom, top = setup(x, np.array([1.7, 0.2, 2.99]))
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x[[1, 0, 2]])


def test_backward_accumulates_repeats():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 2))
    idx = np.array([1.0, 3.0, 1.0, 1.0])
    layer, bottom, top = setup(x, idx)
    layer.Forward(bottom, top)
    dy = rng.standard_normal((4, 2))
    top[0].diff[...] = dy
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [True, False], bottom)
    expected = np.zeros((4, 2))
    for i, j in enumerate(idx.astype(int)):
        expected[j] += dy[i]
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12)


def test_gradient():
    x = np.random.default_rng(2).standard_normal((4, 3))
    layer, bottom, top = setup(x, np.array([2.0, 0.0, 2.0, 3.0, 2.0]))
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_propagate_down_false_leaves_diff():
    layer, bottom, top = setup(np.ones((3, 2)), np.array([0.0, 2.0]))
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_index_gradient_is_an_error_and_never_forced():
    layer, bottom, top = setup(np.ones((3, 2)), np.array([0.0, 2.0]))
    layer.Forward(bottom, top)
    with pytest.raises(CaffeliteError, match=r"'br'.*BatchReindex.*index bottom"):
        layer.Backward(top, [True, True], bottom)
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)


@pytest.mark.parametrize("bad", [3.0, -1.0, np.nan])
def test_out_of_range_index_is_an_error(bad):
    layer, bottom, top = setup(np.ones((3, 2)), np.array([0.0, bad]))
    with pytest.raises(CaffeliteError, match=r"'br'.*\[0, 3\).*\(3, 2\)"):
        layer.Forward(bottom, top)


def test_index_with_two_axes_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'br'.*one axis.*\(2, 1\)"):
        setup(np.ones((3, 2)), np.zeros((2, 1)))
