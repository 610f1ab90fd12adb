"""Concat layer: forward vs np.concatenate, single-bottom alias, gradients, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(n_bottom, text=""):
    bottoms = " ".join(f'bottom: "x{i}"' for i in range(n_bottom))
    return text_format.Parse(f'name: "cat" type: "Concat" {bottoms} top: "y" '
                             f'concat_param {{ {text} }}', caffe_pb2.LayerParameter())




def ref_concat(xs, axis):
    """Plain loop: copy each input's slices along ``axis`` one after another."""
    pieces = []
    for x in xs:
        for k in range(x.shape[axis]):
            pieces.append(np.take(x, [k], axis=axis))
    return np.concatenate(pieces, axis=axis)


CASES = [
    ("", [(2, 1, 3), (2, 4, 3), (2, 2, 3)], 1),            # default axis 1
    ("axis: 0", [(1, 3, 2), (3, 3, 2)], 0),
    ("axis: -1", [(2, 3, 1), (2, 3, 4)], 2),
    ("axis: 2", [(2, 3, 1, 2), (2, 3, 2, 2)], 2),
    ("concat_dim: 2", [(2, 2, 3), (2, 2, 1)], 2),           # deprecated alias
    ("concat_dim: 0", [(2, 2), (3, 2)], 0),
]


@pytest.mark.parametrize("text, shapes, axis", CASES)
def test_forward(text, shapes, axis):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in shapes]
    bottom = make_blobs(xs)
    layer, top = build_layer(layer_param(len(xs), text), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, ref_concat(xs, axis))


@pytest.mark.parametrize("text, shapes, axis", CASES[:5])
def test_gradients(text, shapes, axis):
    rng = np.random.default_rng(1)
    bottom = make_blobs([rng.standard_normal(s) for s in shapes])
    layer, top = build_layer(layer_param(len(shapes), text), bottom)
    check_gradients(layer, bottom, top)


def test_backward_slices_and_propagate_down():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, n, 3)) for n in (1, 2, 3)]
    bottom = make_blobs(xs)
    layer, top = build_layer(layer_param(3), bottom)
    layer.Forward(bottom, top)
    dy = rng.standard_normal((2, 6, 3))
    top[0].diff[...] = dy
    bottom[1].diff[...] = 5.0
    layer.Backward(top, [True, False, True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, dy[:, 0:1])
    assert (bottom[1].diff == 5.0).all()
    np.testing.assert_array_equal(bottom[2].diff, dy[:, 3:6])


def test_single_bottom_is_alias():
    x = np.random.default_rng(3).standard_normal((2, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(1), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert np.shares_memory(top[0].diff, bottom[0].diff)
    top[0].diff[...] = 4.0
    layer.Backward(top, [True], bottom)
    assert (bottom[0].diff == 4.0).all()
    # a larger bottom gets new buffers; the next Forward re-shares them
    bottom[0].reshape(5, 3)
    bottom[0].data[...] = 1.5
    layer.Forward(bottom, top)
    assert top[0].shape == (5, 3)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert (top[0].data == 1.5).all()


def test_reshape_follows_bottoms():
    bottom = make_blobs([np.ones((2, 1, 3)), np.zeros((2, 2, 3))])
    layer, top = build_layer(layer_param(2), bottom)
    bottom[0].reshape(4, 2, 3)
    bottom[1].reshape(4, 5, 3)
    layer.Forward(bottom, top)
    assert top[0].shape == (4, 7, 3)


def test_axis_and_concat_dim_together():
    with pytest.raises(CaffeliteError, match="cat.*Concat.*axis.*concat_dim"):
        build_layer(layer_param(2, "axis: 1 concat_dim: 1"),
                    make_blobs([np.zeros((2, 2)), np.zeros((2, 2))]))


def test_mismatched_shapes_name_layer_and_shapes():
    with pytest.raises(CaffeliteError, match=r"cat.*Concat.*\(2, 3, 4\).*\(2, 3, 5\)"):
        build_layer(layer_param(2), make_blobs([np.zeros((2, 3, 4)), np.zeros((2, 3, 5))]))


def test_mismatched_num_axes():
    with pytest.raises(CaffeliteError, match=r"\(2, 3\).*\(2, 3, 1\)"):
        build_layer(layer_param(2), make_blobs([np.zeros((2, 3)), np.zeros((2, 3, 1))]))


@pytest.mark.parametrize("text", ["axis: 3", "axis: -4", "concat_dim: 3"])
def test_axis_out_of_range(text):
    with pytest.raises(CaffeliteError, match=r"cat.*out of range.*\(2, 3, 4\)"):
        build_layer(layer_param(2, text), make_blobs([np.zeros((2, 3, 4))] * 2))


@pytest.mark.parametrize("name", ["concat_axis0", "concat_axis1"])
def test_fixtures(fixtures_dir, name):
    replay(fixtures_dir, name)
