"""HingeLoss: L1 and L2 forward against a loop reference, gradients, loss weight, label
errors, shape errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError, LayerError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "hinge" type: "HingeLoss" bottom: "s" bottom: "l" '
                             f'top: "loss" {params}', caffe_pb2.LayerParameter())


def reference(s, label, norm):
    n = s.shape[0]
    s = s.reshape(n, -1)
    total = 0.0
    for i in range(n):
        for j in range(s.shape[1]):
            sign = -1.0 if j == int(label.reshape(-1)[i]) else 1.0
            t = max(0.0, 1.0 + sign * s[i, j])
            total += t if norm == "L1" else t * t
    return total / n


def scores(shape, seed=0):
    """Scores whose margins 1 +- s stay away from the hinge at 0."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-2, 2, shape)
    near = np.abs(np.abs(s) - 1) < 0.1
    s[near] += 0.3
    return s


def run(params, s, label, dtype=np.float64):
    bottom = make_blobs([s, label], dtype=dtype)
    layer, top = build_layer(layer_param(params), bottom, dtype=dtype)
    layer.Forward(bottom, top)
    return layer, bottom, top


@pytest.mark.parametrize("norm", ["L1", "L2"])
@pytest.mark.parametrize("shape,label", [((5, 4), [1, 0, 0, 2, 3]), ((3, 2, 2), [3, 0, 1.9]),
                                         ((2, 3, 1, 1), [[2], [0]])])
def test_forward_matches_reference(norm, shape, label):
    s = scores(shape)
    label = np.array(label, dtype=np.float64)
    _, _, top = run(f"hinge_loss_param {{ norm: {norm} }}", s, label)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, reference(s, label, norm), rtol=1e-12)


def test_default_norm_is_l1():
    s, label = scores((3, 4), 1), np.array([0.0, 3.0, 1.0])
    _, _, top = run("", s, label)
    np.testing.assert_allclose(top[0].data, reference(s, label, "L1"), rtol=1e-12)


@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_gradient(norm):
    s, label = scores((4, 5), 2), np.array([4.0, 0.0, 2.0, 2.0])
    bottom = make_blobs([s, label])
    layer, top = build_layer(layer_param(f"hinge_loss_param {{ norm: {norm} }}"), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0])


@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_loss_weight_scales_loss_and_gradient(norm):
    s, label = scores((4, 3), 3), np.array([2.0, 0.0, 1.0, 1.0])
    layer, bottom, top = run(f"hinge_loss_param {{ norm: {norm} }}", s, label)
    layer.Backward(top, [True, False], bottom)
    unit = bottom[0].diff.copy()
    sign = np.where(np.arange(3)[None, :] == label[:, None].astype(int), -1.0, 1.0)
    t = np.maximum(0, 1 + sign * s)
    expected = sign * (t > 0) / 4 if norm == "L1" else 2 * t * sign / 4
    np.testing.assert_allclose(unit, expected, rtol=1e-12)
    layer, bottom, top = run(f"loss_weight: 3 hinge_loss_param {{ norm: {norm} }}", s, label)
    assert layer.Forward(bottom, top) == pytest.approx(3 * reference(s, label, norm))
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, 3 * unit, rtol=1e-12)


def test_float32():
    s, label = scores((5, 4), 4).astype(np.float32), np.array([1, 0, 0, 2, 3], np.float32)
    layer, bottom, top = run("hinge_loss_param { norm: L2 }", s, label, dtype=np.float32)
    layer.Backward(top, [True, False], bottom)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32
    np.testing.assert_allclose(top[0].data, reference(s.astype(np.float64), label, "L2"),
                               rtol=1e-5)


def test_propagate_down_false_leaves_diff():
    layer, bottom, top = run("", scores((3, 4)), np.array([0.0, 1.0, 2.0]))
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_label_gradient_is_an_error():
    layer, bottom, top = run("", scores((3, 4)), np.array([0.0, 1.0, 2.0]))
    assert not layer.allow_force_backward(1)
    with pytest.raises(LayerError, match=r"'hinge'.*cannot backpropagate to label"):
        layer.Backward(top, [True, True], bottom)


@pytest.mark.parametrize("label", [[0.0, 4.0, 1.0], [0.0, -1.0, 1.0]])
def test_label_out_of_range_is_an_error(label):
    with pytest.raises(LayerError, match=r"'hinge'.*HingeLoss.*label value -?\d.*\[0, 4\)"):
        run("", scores((3, 4)), np.array(label))


@pytest.mark.parametrize("shape_s,shape_l,match", [
    ((3, 4), (2,), r"same first dimension.*\(3, 4\).*\(2,\)"),
    ((3, 4), (3, 2), r"one label per item.*\(3, 2\)")])
def test_shape_errors(shape_s, shape_l, match):
    with pytest.raises(CaffeliteError, match=r"'hinge'.*" + match):
        build_layer(layer_param(), make_blobs([np.zeros(shape_s), np.zeros(shape_l)]))


@pytest.mark.parametrize("case", ["hinge_loss_l1", "hinge_loss_l2"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
