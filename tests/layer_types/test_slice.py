"""Slice layer: equal parts and slice points, single-top alias, gradients, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(n_top, text=""):
    tops = " ".join(f'top: "y{i}"' for i in range(n_top))
    return text_format.Parse(f'name: "sl" type: "Slice" bottom: "x" {tops} '
                             f'slice_param {{ {text} }}', caffe_pb2.LayerParameter())




def ref_slice(x, axis, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(np.take(x, list(range(start, start + n)), axis=axis))
        start += n
    return out


CASES = [
    # text, n_top, bottom shape, axis, top sizes along the axis
    ("", 2, (2, 4, 3), 1, [2, 2]),
    ("axis: 0", 3, (6, 2), 0, [2, 2, 2]),
    ("axis: 1 slice_point: 1 slice_point: 4", 3, (2, 6, 3), 1, [1, 3, 2]),
    ("axis: -1 slice_point: 2", 2, (2, 3, 5), 2, [2, 3]),
    ("slice_dim: 2 slice_point: 1", 2, (2, 2, 3), 2, [1, 2]),
    ("slice_dim: 0", 2, (4, 3), 0, [2, 2]),
]


@pytest.mark.parametrize("text, n_top, shape, axis, sizes", CASES)
def test_forward(text, n_top, shape, axis, sizes):
    x = np.random.default_rng(0).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(n_top, text), bottom)
    layer.Forward(bottom, top)
    for t, ref in zip(top, ref_slice(x, axis, sizes)):
        assert t.shape == ref.shape
        np.testing.assert_array_equal(t.data, ref)


@pytest.mark.parametrize("text, n_top, shape, axis, sizes", CASES[:5])
def test_gradients(text, n_top, shape, axis, sizes):
    bottom = make_blobs([np.random.default_rng(1).standard_normal(shape)])
    layer, top = build_layer(layer_param(n_top, text), bottom)
    check_gradients(layer, bottom, top)


def test_backward_and_propagate_down():
    bottom = make_blobs([np.zeros((2, 6, 3))])
    layer, top = build_layer(layer_param(3, "slice_point: 1 slice_point: 4"), bottom)
    layer.Forward(bottom, top)
    rng = np.random.default_rng(2)
    dys = [rng.standard_normal(t.shape) for t in top]
    for t, dy in zip(top, dys):
        t.diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.concatenate(dys, axis=1))
    bottom[0].diff[...] = 3.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 3.0).all()


def test_single_top_is_alias():
    x = np.random.default_rng(3).standard_normal((2, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(1), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert np.shares_memory(top[0].diff, bottom[0].diff)
    bottom[0].reshape(4, 5)
    layer.Forward(bottom, top)
    assert top[0].shape == (4, 5) and np.shares_memory(top[0].data, bottom[0].data)


def test_slice_point_at_axis_end_gives_empty_top():
    # Caffe accepts a last slice point equal to the axis size: the last top is empty
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param(2, "slice_point: 3"), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (2, 3) and top[1].shape == (2, 0)


def test_axis_and_slice_dim_together():
    with pytest.raises(CaffeliteError, match="sl.*Slice.*axis.*slice_dim"):
        build_layer(layer_param(2, "axis: 1 slice_dim: 1"), make_blobs([np.zeros((2, 2))]))


@pytest.mark.parametrize("text, n_top", [
    ("slice_point: 1", 3),                    # wrong count
    ("slice_point: 2 slice_point: 2", 3),     # not strictly increasing
    ("slice_point: 3 slice_point: 1", 3),
    ("slice_point: 0", 2),                    # first piece would be empty
])
def test_bad_slice_points(text, n_top):
    with pytest.raises(CaffeliteError, match="sl.*Slice.*slice_point"):
        build_layer(layer_param(n_top, text), make_blobs([np.zeros((2, 6))]))


def test_slice_point_past_axis():
    with pytest.raises(CaffeliteError, match=r"slice_point \[2, 7\].*size 6.*\(2, 6\)"):
        build_layer(layer_param(3, "slice_point: 2 slice_point: 7"),
                    make_blobs([np.zeros((2, 6))]))


def test_uneven_split():
    with pytest.raises(CaffeliteError, match=r"sl.*3 tops.*size 4.*\(2, 4\)"):
        build_layer(layer_param(3), make_blobs([np.zeros((2, 4))]))


@pytest.mark.parametrize("text", ["axis: 2", "axis: -3", "slice_dim: 2"])
def test_axis_out_of_range(text):
    with pytest.raises(CaffeliteError, match=r"sl.*out of range.*\(2, 4\)"):
        build_layer(layer_param(2, text), make_blobs([np.zeros((2, 4))]))


@pytest.mark.parametrize("name", ["slice_even", "slice_points"])
def test_fixtures(fixtures_dir, name):
    replay(fixtures_dir, name)
