"""Reshape layer: 0 / -1 dims, axis and num_axes, shared memory, gradient, errors, fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, make_blobs

from layer_case import replay


def layer_param(dims, extra=""):
    shape = " ".join(f"dim: {d}" for d in dims)
    return text_format.Parse(f'name: "rs" type: "Reshape" bottom: "x" top: "y" '
                             f'reshape_param {{ shape {{ {shape} }} {extra} }}',
                             caffe_pb2.LayerParameter())




SHAPE = (2, 3, 6, 5)


@pytest.mark.parametrize("dims, extra, expected", [
    ([0, -1, 2], "", (2, 45, 2)),
    ([6, 30], "", (6, 30)),
    ([-1], "", (180,)),
    ([0, 0, 0, 0], "", SHAPE),
    ([0, -1], "", (2, 90)),
    ([1, 3], "axis: 1 num_axes: 1", (2, 1, 3, 6, 5)),
    ([-1], "axis: 1", (2, 90)),
    ([0, 2, -1], "axis: 1 num_axes: 2", (2, 3, 2, 3, 5)),
    ([1], "axis: -1", (2, 3, 6, 5, 1)),          # -1 means after the last axis
    ([-1], "axis: -3", (2, 3, 30)),
    ([1], "axis: 0 num_axes: 0", (1, 2, 3, 6, 5)),
    ([], "axis: 2 num_axes: 0", SHAPE),
    ([3, -1], "axis: 2 num_axes: 1", (2, 3, 3, 2, 5)),
])
def test_shapes(dims, extra, expected):
    x = np.random.default_rng(0).standard_normal(SHAPE)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(dims, extra), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == expected
    np.testing.assert_array_equal(top[0].data, x.reshape(expected))


def test_shares_data_and_diff():
    bottom = make_blobs([np.zeros(SHAPE)])
    layer, top = build_layer(layer_param([0, -1]), bottom)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert np.shares_memory(top[0].diff, bottom[0].diff)
    top[0].diff[...] = np.arange(180.0).reshape(2, 90)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.arange(180.0).reshape(SHAPE))


def test_gradient():
    """Central differences; written here because the shared checker zeroes bottom diffs
    after setting top diffs, which clears an aliased diff."""
    bottom = make_blobs([np.random.default_rng(1).standard_normal((2, 3, 2))])
    layer, top = build_layer(layer_param([0, -1]), bottom)
    w = np.random.default_rng(2).standard_normal((2, 6))
    layer.Forward(bottom, top)
    top[0].diff[...] = w
    layer.Backward(top, [True], bottom)
    analytic = bottom[0].diff.copy().reshape(-1)
    flat, eps = bottom[0].data.reshape(-1), 1e-4
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + eps
        layer.Forward(bottom, top)
        plus = float((top[0].data * w).sum())
        flat[k] = saved - eps
        layer.Forward(bottom, top)
        minus = float((top[0].data * w).sum())
        flat[k] = saved
        assert abs(analytic[k] - (plus - minus) / (2 * eps)) < 1e-7


def test_bottom_reshape_reinfers():
    bottom = make_blobs([np.zeros(SHAPE)])
    layer, top = build_layer(layer_param([0, -1]), bottom)
    bottom[0].reshape(4, 3, 6, 5)
    bottom[0].data[...] = 1.25
    layer.Forward(bottom, top)
    assert top[0].shape == (4, 90)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert (top[0].data == 1.25).all()


def test_two_inferred_dims():
    with pytest.raises(CaffeliteError, match="rs.*Reshape.*more than one -1"):
        build_layer(layer_param([-1, -1]), make_blobs([np.zeros(SHAPE)]))


def test_count_mismatch_names_shapes():
    with pytest.raises(CaffeliteError, match=r"rs.*\(2, 3, 6, 5\).*\(7, 3\)"):
        build_layer(layer_param([7, 3]), make_blobs([np.zeros(SHAPE)]))


def test_not_divisible_for_inference():
    with pytest.raises(CaffeliteError, match=r"rs.*-1.*\(2, 3, 6, 5\)"):
        build_layer(layer_param([7, -1]), make_blobs([np.zeros(SHAPE)]))


def test_zero_without_axis_to_copy():
    with pytest.raises(CaffeliteError, match=r"rs.*0.*\(2, 3, 6, 5\)"):
        build_layer(layer_param([0, 0], "axis: 3"), make_blobs([np.zeros(SHAPE)]))


@pytest.mark.parametrize("extra, field", [
    ("axis: 5", "axis"), ("axis: -6", "axis"),
    ("axis: 2 num_axes: 3", "num_axes"), ("num_axes: -2", "num_axes")])
def test_axis_range(extra, field):
    with pytest.raises(CaffeliteError, match=f"rs.*{field}"):
        build_layer(layer_param([-1], extra), make_blobs([np.zeros(SHAPE)]))


def test_dim_below_minus_one():
    with pytest.raises(CaffeliteError, match="rs.*below -1"):
        build_layer(layer_param([-2, 90]), make_blobs([np.zeros(SHAPE)]))


def test_in_place_is_an_error():
    blob = make_blobs([np.zeros((2, 3))])[0]
    layer = create_layer(layer_param([-1]))
    with pytest.raises(CaffeliteError, match="rs.*in-place"):
        layer.SetUp([blob], [blob])


def test_fixture_reshape(fixtures_dir):
    replay(fixtures_dir, "reshape")
