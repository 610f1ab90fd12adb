"""Tile: forward against a loop reference, gradients, errors, fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="tiles: 3"):
    return text_format.Parse(f'name: "tl" type: "Tile" bottom: "x" top: "y" '
                             f'tile_param {{ {params} }}', caffe_pb2.LayerParameter())


def reference(x, axis, tiles):
    axis = axis % x.ndim
    shape = list(x.shape)
    shape[axis] *= tiles
    out = np.empty(shape)
    size = x.shape[axis]
    for idx in np.ndindex(*shape):
        src = list(idx)
        src[axis] = idx[axis] % size      # copies of the whole slice, back to back
        out[idx] = x[tuple(src)]
    return out


@pytest.mark.parametrize("shape,axis,tiles", [((2, 3, 2), 1, 3), ((2, 3, 2), 0, 2),
                                              ((2, 3, 2), -1, 4), ((4,), 0, 1),
                                              ((2, 1, 3, 2), 2, 2)])
def test_forward_matches_reference(shape, axis, tiles):
    x = np.random.default_rng(0).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"axis: {axis} tiles: {tiles}"), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, reference(x, axis, tiles))


def test_default_axis_is_1():
    x = np.arange(6.0).reshape(2, 3)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param("tiles: 2"), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]])


@pytest.mark.parametrize("axis,tiles", [(1, 3), (0, 2), (-1, 2)])
def test_gradient(axis, tiles):
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"axis: {axis} tiles: {tiles}"), bottom)
    check_gradients(layer, bottom, top)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("params", ["axis: 1", "tiles: 0", "tiles: -2"])
def test_bad_tiles_is_an_error(params):
    with pytest.raises(CaffeliteError, match=r"'tl'.*Tile.*tile_param.tiles"):
        build_layer(layer_param(params), make_blobs([np.ones((2, 3))]))


def test_bad_axis_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'tl'.*tile_param.axis.*\(2, 3\)"):
        build_layer(layer_param("axis: 2 tiles: 2"), make_blobs([np.ones((2, 3))]))


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "tile")
