"""EuclideanLoss: forward against a loop reference, gradients to both inputs, loss weight,
propagate_down, shape errors, Caffe fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "eucl" type: "EuclideanLoss" bottom: "a" bottom: "b" '
                             f'top: "loss" {params}', caffe_pb2.LayerParameter())


def reference(a, b):
    n = a.shape[0]
    a, b = a.reshape(n, -1), b.reshape(n, -1)
    total = 0.0
    for i in range(n):
        for j in range(a.shape[1]):
            total += (a[i, j] - b[i, j]) ** 2
    return total / (2 * n)


@pytest.mark.parametrize("shape_a,shape_b", [((4, 3, 2), (4, 3, 2)), ((5,), (5,)),
                                             ((3, 4), (3, 2, 2)), ((1, 6, 1, 1), (1, 6))])
def test_forward_matches_reference(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    bottom = make_blobs([a, b])
    layer, top = build_layer(layer_param(), bottom)
    loss = layer.Forward(bottom, top)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, reference(a, b), rtol=1e-12)
    assert loss == pytest.approx(reference(a, b), rel=1e-12)   # default loss weight 1


def test_float32_keeps_dtype():
    rng = np.random.default_rng(1)
    bottom = make_blobs([rng.standard_normal((3, 4)), rng.standard_normal((3, 4))],
                        dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1
    layer.Backward(top, [True, True], bottom)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32
    np.testing.assert_allclose(top[0].data, reference(*[b.data.astype(np.float64)
                                                        for b in bottom]), rtol=1e-5)


@pytest.mark.parametrize("shape_b", [(3, 2, 2), (3, 4)])
def test_gradient_both_bottoms(shape_b):
    rng = np.random.default_rng(2)
    bottom = make_blobs([rng.standard_normal((3, 4)), rng.standard_normal(shape_b)])
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top)


def test_gradients_are_opposite_and_scale_with_loss_weight():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    bottom = make_blobs([a, b])
    layer, top = build_layer(layer_param("loss_weight: 2.5"), bottom)
    loss = layer.Forward(bottom, top)
    assert loss == pytest.approx(2.5 * reference(a, b), rel=1e-12)
    assert top[0].diff == 2.5                 # the net pre-fills the weight
    layer.Backward(top, [True, True], bottom)
    np.testing.assert_allclose(bottom[0].diff, 2.5 * (a - b) / 4, rtol=1e-12)
    np.testing.assert_allclose(bottom[1].diff, -2.5 * (a - b) / 4, rtol=1e-12)


@pytest.mark.parametrize("down", [[True, False], [False, True], [False, False]])
def test_propagate_down_false_leaves_diff(down):
    rng = np.random.default_rng(4)
    bottom = make_blobs([rng.standard_normal((2, 3)), rng.standard_normal((2, 3))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    for b in bottom:
        b.diff[...] = 7.0
    layer.Backward(top, down, bottom)
    for d, b in zip(down, bottom):
        assert d or (b.diff == 7.0).all()
        assert not d or (b.diff != 7.0).all()


def test_both_inputs_allow_force_backward():
    bottom = make_blobs([np.zeros((2, 3)), np.zeros((2, 3))])
    layer, _ = build_layer(layer_param(), bottom)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(1)


@pytest.mark.parametrize("shape_a,shape_b,match", [
    ((2, 3), (3, 2), r"same first dimension.*\(2, 3\).*\(3, 2\)"),
    ((2, 3), (2, 4), r"same dimension.*\(2, 3\).*\(2, 4\)"),
    ((), (), r"same first dimension.*\(\)")])
def test_shape_errors_name_layer_and_shapes(shape_a, shape_b, match):
    with pytest.raises(CaffeliteError, match=r"'eucl'.*EuclideanLoss.*" + match):
        build_layer(layer_param(), make_blobs([np.zeros(shape_a), np.zeros(shape_b)]))


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "euclidean_loss")
