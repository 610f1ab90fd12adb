"""ReLU layer: forward vs a per-element reference, leaky slope, gradients away from 0,
in-place use, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(text=""):
    return text_format.Parse(f'name: "rl" type: "ReLU" bottom: "x" top: "y" '
                             f'relu_param {{ {text} }}', caffe_pb2.LayerParameter())




def away_from_zero(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + np.where(x >= 0, 0.05, -0.05)


def ref_relu(x, ns):
    return np.vectorize(lambda v: v if v > 0 else ns * v)(x)


@pytest.mark.parametrize("ns", [0.0, 0.1, 2.0])
def test_forward(ns):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    x[0, 0, 0] = 0.0
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"negative_slope: {ns}"), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, ref_relu(x, np.float32(ns)), rtol=1e-7)


@pytest.mark.parametrize("ns", [0.0, 0.1])
def test_gradient(ns):
    bottom = make_blobs([away_from_zero((2, 3, 4), 1)])
    layer, top = build_layer(layer_param(f"negative_slope: {ns}"), bottom)
    check_gradients(layer, bottom, top)


def test_backward_at_zero_uses_the_negative_side():
    bottom = make_blobs([np.array([-1.0, 0.0, 1.0])])
    layer, top = build_layer(layer_param("negative_slope: 0.5"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 2.0
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, [1.0, 1.0, 2.0])


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([away_from_zero((5,), 2)])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 4.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 4.0).all()


@pytest.mark.parametrize("ns", [0.0, 0.1])
def test_in_place(ns):
    x = away_from_zero((3, 4), 3)
    blob = make_blobs([x])[0]
    layer = create_layer(layer_param(f"negative_slope: {ns}"))
    layer.SetUp([blob], [blob])
    layer.Forward([blob], [blob])
    ns32 = float(np.float32(ns))
    np.testing.assert_allclose(blob.data, ref_relu(x, ns32), rtol=1e-12)
    dy = np.random.default_rng(4).standard_normal((3, 4))
    blob.diff[...] = dy
    layer.Backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, dy * np.where(x > 0, 1.0, ns32), rtol=1e-12)


@pytest.mark.parametrize("ns", [0.0, 0.1])
def test_blocked_forward_matches_plain_maximum(ns):
    # the host path clamps against a block of zeros, several blocks here; NaN, infinities
    # and signed zeros must come out as NumPy's maximum / minimum with a scalar 0 gives them
    from caffelite.layer_types.relu import ZERO_BLOCK
    rng = np.random.default_rng(5)
    x = rng.standard_normal(3 * ZERO_BLOCK + 5).astype(np.float32)
    x[[0, 7, ZERO_BLOCK, -1, -2, -3]] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -np.nan]
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param(f"negative_slope: {ns}"), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    s = np.float32(ns)
    with np.errstate(invalid="ignore"):
        want = np.maximum(x, np.float32(0)) + s * np.minimum(x, np.float32(0)) if ns \
            else np.maximum(x, np.float32(0))
    np.testing.assert_array_equal(top[0].data.view(np.int32), want.view(np.int32))


def test_float32_stays_float32():
    bottom = make_blobs([np.array([-1.0, 2.0])], dtype=np.float32)
    layer, top = build_layer(layer_param("negative_slope: 0.1"), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32


def test_blob_counts_are_checked():
    lp = text_format.Parse('name: "rl" type: "ReLU" bottom: "a" bottom: "b" top: "y"',
                           caffe_pb2.LayerParameter())
    with pytest.raises(CaffeliteError, match="rl.*ReLU.*bottom"):
        build_layer(lp, make_blobs([np.zeros(2), np.zeros(2)]))


@pytest.mark.parametrize("name", ["relu", "relu_leaky", "inplace_chain"])
def test_fixtures(fixtures_dir, name):
    replay(fixtures_dir, name)
