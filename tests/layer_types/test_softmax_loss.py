"""SoftmaxWithLoss: loss and gradient against a loop reference for every normaliser,
ignore_label, spatial labels, the prob top, errors, and Caffe's fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

FLT_MIN = float(np.finfo(np.float32).tiny)


def layer_param(params="", tops=("loss",)):
    top = " ".join(f'top: "{t}"' for t in tops)
    return text_format.Parse(f'name: "sl" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" '
                             f'{top} {params}', caffe_pb2.LayerParameter())


def reference(x, label, axis=1, ignore=None, mode="VALID"):
    """Loss and gradient (for loss weight 1) by explicit loops over positions."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    lab = np.asarray(label).reshape(x.shape[:-1])
    grad = np.zeros_like(x)
    loss, count = 0.0, 0
    for idx in np.ndindex(x.shape[:-1]):
        v = x[idx]
        p = np.exp(v - v.max())
        p /= p.sum()
        k = int(lab[idx])
        if ignore is not None and k == ignore:
            continue
        loss -= np.log(max(p[k], FLT_MIN))
        grad[idx] = p
        grad[idx][k] -= 1
        count += 1
    outer = int(np.prod(x.shape[:axis]))
    inner = int(np.prod(x.shape[axis:-1]))
    norm = {"FULL": outer * inner, "VALID": count, "BATCH_SIZE": outer, "NONE": 1}[mode]
    norm = max(norm, 1)
    return loss / norm, np.moveaxis(grad / norm, -1, axis)


def run(lp, x, label, loss_weight=1.0):
    bottom = make_blobs([x, label])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = loss_weight
    layer.Backward(top, [True, False], bottom)
    return layer, top, bottom


CASES = [  # (params, mode, ignore)
    ("", "VALID", None),
    ("loss_param { ignore_label: 2 }", "VALID", 2),
    ("loss_param { ignore_label: 0 normalization: FULL }", "FULL", 0),
    ("loss_param { ignore_label: 1 normalization: BATCH_SIZE }", "BATCH_SIZE", 1),
    ("loss_param { normalization: NONE }", "NONE", None),
    ("loss_param { normalize: false }", "BATCH_SIZE", None),
    ("loss_param { normalize: true ignore_label: 3 }", "VALID", 3),
    ("loss_param { normalize: false normalization: FULL }", "FULL", None),
]


@pytest.mark.parametrize("params,mode,ignore", CASES)
def test_loss_and_gradient_match_reference(params, mode, ignore):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2, 2)) * 2
    label = rng.integers(0, 4, size=(3, 1, 2, 2)).astype(np.float64)
    layer, top, bottom = run(layer_param(params), x, label, loss_weight=1.5)
    loss, grad = reference(x, label, 1, ignore, mode)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-12)
    np.testing.assert_allclose(bottom[0].diff, 1.5 * grad, rtol=1e-10, atol=1e-15)


def test_every_label_ignored_gives_plus_zero():
    x = np.zeros((2, 3))                                   # p = 1/3 everywhere
    x[:, 1] = 50.0                                         # p(label 1) rounds to 1: log 0.0
    label = np.ones((2,))
    _, top, _ = run(layer_param("loss_param { ignore_label: 1 }"), x, label)
    assert top[0].data == 0 and not np.signbit(top[0].data)


def test_other_axis_and_truncated_labels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5))
    label = rng.integers(0, 5, size=(2, 3)) + 0.7      # floats truncate toward zero
    _, top, bottom = run(layer_param("softmax_param { axis: 2 }"), x, label)
    loss, grad = reference(x, np.floor(label), axis=2)
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-12)
    np.testing.assert_allclose(bottom[0].diff, grad, rtol=1e-10, atol=1e-15)


def test_negative_axis():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 4))
    label = rng.integers(0, 4, size=(2, 3)).astype(float)
    _, top, _ = run(layer_param("softmax_param { axis: -1 }"), x, label)
    np.testing.assert_allclose(top[0].data, reference(x, label, axis=2)[0], rtol=1e-12)


def test_all_ignored_gives_zero_loss_and_gradient():
    x = np.random.default_rng(2).standard_normal((2, 3))
    _, top, bottom = run(layer_param("loss_param { ignore_label: 1 }"), x, np.ones(2))
    assert top[0].data == 0
    assert (bottom[0].diff == 0).all()


def test_probability_is_clamped_at_flt_min():
    x = np.array([[0.0, -1e4], [0.0, 0.0]])
    _, top, _ = run(layer_param("loss_param { normalization: NONE }"), x, np.array([1.0, 0.0]))
    np.testing.assert_allclose(top[0].data, -np.log(FLT_MIN) - np.log(0.5), rtol=1e-12)


def test_float32_loss():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    label = rng.integers(0, 5, size=4).astype(np.float32)
    bottom = make_blobs([x, label], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    loss = layer.Forward(bottom, top)
    np.testing.assert_allclose(loss, reference(x, label)[0], rtol=1e-5)
    assert top[0].data.dtype == np.float32


@pytest.mark.parametrize("params", ["loss_param { ignore_label: 1 }",
                                    "softmax_param { axis: 2 } loss_param { normalization: FULL }"])
def test_gradient(params):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 3))
    label = rng.integers(0, 3, size=(2, 3)).astype(float)
    label[0, 0] = 1
    bottom = make_blobs([x, label])
    layer, top = build_layer(layer_param(params), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_prob_top():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 3))
    label = rng.integers(0, 4, size=(2, 3)).astype(float)
    bottom = make_blobs([x, label])
    layer, top = build_layer(layer_param(tops=("loss", "prob")), bottom)
    assert layer.loss_weights == [1.0, 0.0]
    layer.Forward(bottom, top)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(top[1].data, p, rtol=1e-12)
    assert top[1].shape == x.shape
    # A gradient arriving at the prob top flows back through the softmax too.
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_no_gradient_to_labels():
    bottom = make_blobs([np.zeros((2, 3)), np.zeros(2)])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    with pytest.raises(CaffeliteError, match="'sl'.*cannot backpropagate to label inputs"):
        layer.Backward(top, [True, True], bottom)
    assert not layer.allow_force_backward(1)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.random.default_rng(6).standard_normal((2, 3)), np.zeros(2)])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_label_count_mismatch():
    with pytest.raises(CaffeliteError, match=r"'sl'.*\(2, 3, 4\).*\(2, 3\)"):
        build_layer(layer_param(), make_blobs([np.zeros((2, 3, 4)), np.zeros((2, 3))]))


def test_first_dimension_mismatch():
    with pytest.raises(CaffeliteError, match=r"'sl'.*first dimension.*\(2, 3\).*\(3,\)"):
        build_layer(layer_param(), make_blobs([np.zeros((2, 3)), np.zeros(3)]))


@pytest.mark.parametrize("bad", [3.0, -1.0])
def test_label_out_of_range(bad):
    bottom = make_blobs([np.zeros((2, 3)), np.array([0.0, bad])])
    layer, top = build_layer(layer_param(), bottom)
    with pytest.raises(CaffeliteError, match=rf"'sl'.*label value {int(bad)} outside \[0, 3\)"):
        layer.Forward(bottom, top)


def test_ignored_label_may_be_out_of_range():
    x = np.random.default_rng(7).standard_normal((2, 3))
    _, top, _ = run(layer_param("loss_param { ignore_label: 255 }"), x, np.array([255.0, 1.0]))
    np.testing.assert_allclose(top[0].data, reference(x, [0, 1], ignore=0)[0], rtol=1e-12)


@pytest.mark.parametrize("case", ["softmax_loss_batch_size", "softmax_loss_full",
                                  "softmax_loss_none", "softmax_loss_spatial_ignore"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
