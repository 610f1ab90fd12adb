"""MultinomialLogisticLoss: forward against a loop reference, the 1e-20 threshold,
gradients, loss weight, label errors, shape errors, fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError, LayerError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "mll" type: "MultinomialLogisticLoss" bottom: "p" '
                             f'bottom: "l" top: "loss" {params}', caffe_pb2.LayerParameter())


def reference(p, label):
    n = p.shape[0]
    p = p.reshape(n, -1)
    total = 0.0
    for i in range(n):
        total -= np.log(max(p[i, int(label.reshape(-1)[i])], 1e-20))
    return total / n


def probs(shape, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 1.0, shape)
    return p / p.reshape(shape[0], -1).sum(axis=1).reshape((-1,) + (1,) * (len(shape) - 1))


def run(params, p, label, dtype=np.float64):
    bottom = make_blobs([p, label], dtype=dtype)
    layer, top = build_layer(layer_param(params), bottom, dtype=dtype)
    layer.Forward(bottom, top)
    return layer, bottom, top


@pytest.mark.parametrize("shape,label", [((4, 5), [4, 3, 3, 0]), ((2, 3, 2), [5, 0.7]),
                                         ((3, 2, 1, 1), [[1], [0], [1]])])
def test_forward_matches_reference(shape, label):
    p, label = probs(shape), np.array(label, dtype=np.float64)
    layer, _, top = run("", p, label)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, reference(p, label), rtol=1e-12)


def test_zero_probability_is_thresholded():
    p = np.array([[0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    label = np.array([0.0, 1.0], dtype=np.float32)
    layer, bottom, top = run("", p, label, dtype=np.float32)
    thr = np.float32(1e-20)
    np.testing.assert_allclose(top[0].data, -(np.log(thr) + np.log(0.5)) / 2, rtol=1e-6)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    assert np.isfinite(bottom[0].diff).all()
    np.testing.assert_allclose(bottom[0].diff, [[-0.5 / thr, 0], [0, -1.0]], rtol=1e-6)


def test_gradient():
    p, label = probs((4, 5), 1), np.array([4.0, 0.0, 2.0, 2.0])
    bottom = make_blobs([p, label])
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_loss_weight_scales_loss_and_gradient():
    p, label = probs((3, 4), 2), np.array([1.0, 3.0, 1.0])
    layer, bottom, top = run("", p, label)
    layer.Backward(top, [True, False], bottom)
    unit = bottom[0].diff.copy()
    expected = np.zeros_like(p)
    expected[np.arange(3), label.astype(int)] = -1 / (3 * p[np.arange(3), label.astype(int)])
    np.testing.assert_allclose(unit, expected, rtol=1e-12)
    layer, bottom, top = run("loss_weight: -2", p, label)
    assert layer.Forward(bottom, top) == pytest.approx(-2 * reference(p, label))
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, -2 * unit, rtol=1e-12)


def test_propagate_down_false_leaves_diff():
    layer, bottom, top = run("", probs((3, 4)), np.array([0.0, 1.0, 2.0]))
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_label_gradient_is_an_error():
    layer, bottom, top = run("", probs((3, 4)), np.array([0.0, 1.0, 2.0]))
    assert not layer.allow_force_backward(1) and layer.allow_force_backward(0)
    with pytest.raises(LayerError, match=r"'mll'.*cannot backpropagate to label"):
        layer.Backward(top, [True, True], bottom)


@pytest.mark.parametrize("label", [[0.0, 4.0, 1.0], [-1.0, 0.0, 1.0]])
def test_label_out_of_range_is_an_error(label):
    with pytest.raises(LayerError, match=r"'mll'.*MultinomialLogisticLoss.*label value.*"
                                         r"\[0, 4\)"):
        run("", probs((3, 4)), np.array(label))


@pytest.mark.parametrize("shape_p,shape_l,match", [
    ((3, 4), (4,), r"same first dimension.*\(3, 4\).*\(4,\)"),
    ((3, 4), (3, 4), r"one label per item.*\(3, 4\)")])
def test_shape_errors(shape_p, shape_l, match):
    with pytest.raises(CaffeliteError, match=r"'mll'.*" + match):
        build_layer(layer_param(), make_blobs([np.zeros(shape_p), np.zeros(shape_l)]))


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "multinomial_logistic_loss")
