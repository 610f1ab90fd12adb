"""Flatten layer: output shapes, shared data and diff, gradient, errors, fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, make_blobs

from layer_case import replay


def layer_param(text=""):
    return text_format.Parse(f'name: "flat" type: "Flatten" bottom: "x" top: "y" '
                             f'flatten_param {{ {text} }}', caffe_pb2.LayerParameter())




def alias_gradient_check(layer, bottom, top, eps=1e-4):
    """Central differences for layers whose top aliases the bottom's diff.

    (caffelite.testing.check_gradients zeroes the bottom diffs after writing the top diffs,
    which wipes an aliased top diff; this check writes the top diff last.)"""
    rng = np.random.default_rng(11)
    layer.Forward(bottom, top)
    w = rng.standard_normal(top[0].shape)
    top[0].diff[...] = w
    layer.Backward(top, [True], bottom)
    analytic = bottom[0].diff.copy()
    flat = bottom[0].data.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        layer.Forward(bottom, top)
        plus = float((top[0].data * w).sum())
        flat[k] = saved - eps
        layer.Forward(bottom, top)
        minus = float((top[0].data * w).sum())
        flat[k] = saved
        np.testing.assert_allclose(analytic.reshape(-1)[k], (plus - minus) / (2 * eps),
                                   rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("text, shape, expected", [
    ("", (2, 3, 4, 5), (2, 60)),
    ("axis: 2", (2, 3, 4, 5), (2, 3, 20)),
    ("axis: 0 end_axis: 1", (2, 3, 4, 5), (6, 4, 5)),
    ("axis: -3 end_axis: -2", (2, 3, 4, 5), (2, 12, 5)),
    ("axis: 1 end_axis: 1", (2, 3, 4), (2, 3, 4)),
    ("axis: 0", (7,), (7,)),
    ("", (2, 3), (2, 3)),
    ("axis: 2 end_axis: 1", (2, 3, 4), (2, 3, 1, 4)),  # Caffe: empty range -> a 1 axis
])
def test_forward_shapes(text, shape, expected):
    x = np.random.default_rng(0).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == expected
    np.testing.assert_array_equal(top[0].data, x.reshape(expected))


def test_shares_data_and_diff():
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert np.shares_memory(top[0].diff, bottom[0].diff)
    bottom[0].data[0, 0, 0] = 42.0
    assert top[0].data[0, 0] == 42.0
    top[0].diff[...] = np.arange(12.0).reshape(2, 6)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.arange(12.0).reshape(2, 3, 2))


def test_gradient():
    bottom = make_blobs([np.random.default_rng(2).standard_normal((2, 3, 2))])
    layer, top = build_layer(layer_param("axis: 1"), bottom)
    alias_gradient_check(layer, bottom, top)


def test_reshape_follows_bottom():
    bottom = make_blobs([np.zeros((2, 3, 4))])
    layer, top = build_layer(layer_param(), bottom)
    bottom[0].reshape(5, 3, 4)  # larger: new buffers, which the top must follow
    bottom[0].data[...] = 2.0
    layer.Forward(bottom, top)
    assert top[0].shape == (5, 12)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert (top[0].data == 2.0).all()


def test_in_place_is_an_error():
    blob = make_blobs([np.zeros((2, 3))])[0]
    layer = create_layer(layer_param())
    with pytest.raises(CaffeliteError, match="flat.*Flatten.*in-place"):
        layer.SetUp([blob], [blob])


@pytest.mark.parametrize("text, field", [("axis: 3", "axis"), ("axis: -4", "axis"),
                                         ("end_axis: 3", "end_axis")])
def test_axis_out_of_range(text, field):
    with pytest.raises(CaffeliteError, match=rf"flat.*flatten_param\.{field}.*\(2, 3, 4\)"):
        build_layer(layer_param(text), make_blobs([np.zeros((2, 3, 4))]))


def test_end_axis_before_axis():
    with pytest.raises(CaffeliteError, match=r"flat.*end_axis.*\(2, 3, 4\)"):
        build_layer(layer_param("axis: 2 end_axis: 0"), make_blobs([np.zeros((2, 3, 4))]))


def test_fixture_flatten(fixtures_dir):
    replay(fixtures_dir, "flatten")
