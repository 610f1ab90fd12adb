"""Split layer: tops share the bottom's data, backward sums the top diffs, fan-out fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(n_top):
    tops = " ".join(f'top: "y{i}"' for i in range(n_top))
    return text_format.Parse(f'name: "sp" type: "Split" bottom: "x" {tops}',
                             caffe_pb2.LayerParameter())




@pytest.mark.parametrize("n_top", [1, 2, 3])
def test_forward_shares_data(n_top):
    x = np.random.default_rng(0).standard_normal((2, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(n_top), bottom)
    layer.Forward(bottom, top)
    for t in top:
        np.testing.assert_array_equal(t.data, x)
        assert np.shares_memory(t.data, bottom[0].data)
        assert not np.shares_memory(t.diff, bottom[0].diff)


@pytest.mark.parametrize("n_top", [1, 3])
def test_backward_sums_top_diffs(n_top):
    bottom = make_blobs([np.zeros((2, 3))])
    layer, top = build_layer(layer_param(n_top), bottom)
    rng = np.random.default_rng(1)
    dys = [rng.standard_normal((2, 3)) for _ in range(n_top)]
    for t, dy in zip(top, dys):
        t.diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, sum(dys), rtol=1e-12)
    # overwritten, not accumulated
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, sum(dys), rtol=1e-12)


def test_gradient():
    bottom = make_blobs([np.random.default_rng(2).standard_normal((3, 4))])
    layer, top = build_layer(layer_param(3), bottom)
    check_gradients(layer, bottom, top)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.zeros(4)])
    layer, top = build_layer(layer_param(2), bottom)
    for t in top:
        t.diff[...] = 1.0
    bottom[0].diff[...] = 6.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 6.0).all()


def test_follows_bottom_reshape():
    bottom = make_blobs([np.zeros((2, 3))])
    layer, top = build_layer(layer_param(2), bottom)
    bottom[0].reshape(4, 5)
    bottom[0].data[...] = 3.0
    layer.Forward(bottom, top)
    for t in top:
        assert t.shape == (4, 5) and (t.data == 3.0).all()


def test_in_place_is_an_error():
    blob = make_blobs([np.zeros(3)])[0]
    layer = create_layer(layer_param(1))
    with pytest.raises(CaffeliteError, match="sp.*Split.*in-place"):
        layer.SetUp([blob], [blob])


def test_fixture_fanout_split(fixtures_dir):
    replay(fixtures_dir, "fanout_split")
