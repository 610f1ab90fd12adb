"""SigmoidCrossEntropyLoss: forward against the naive cross-entropy, overflow safety,
normalisation modes, ignore_label, gradients, loss weight, label errors."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError, LayerError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "x" '
                             f'bottom: "t" top: "loss" {params}', caffe_pb2.LayerParameter())


def reference(x, t, norm_mode=None, ignore=None):
    """Naive -[t ln s + (1 - t) ln(1 - s)] per element (fine for moderate x)."""
    x, t = x.reshape(-1), t.reshape(-1)
    total, kept = 0.0, 0
    for xi, ti in zip(x, t):
        if ignore is not None and int(ti) == ignore:
            continue
        s = 1.0 / (1.0 + np.exp(-xi))
        total -= ti * np.log(s) + (1 - ti) * np.log(1 - s)
        kept += 1
    return total, kept


def run(params, x, t, dtype=np.float64):
    bottom = make_blobs([x, t], dtype=dtype)
    layer, top = build_layer(layer_param(params), bottom, dtype=dtype)
    layer.Forward(bottom, top)
    return layer, bottom, top


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2), (5,)])
def test_forward_default_divides_by_batch_size(shape):
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal(shape) * 3, rng.uniform(0, 1, shape)
    _, _, top = run("", x, t)
    total, _ = reference(x, t)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, total / shape[0], rtol=1e-10)


def test_large_logits_are_stable():
    x = np.array([[800.0, -800.0, 50.0, -50.0]], dtype=np.float32)
    t = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    layer, bottom, top = run("", x, t, dtype=np.float32)
    # The first two are perfect predictions; the last two cost |x| each.
    np.testing.assert_allclose(top[0].data, 100.0, rtol=1e-6)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    assert np.isfinite(bottom[0].diff).all() and bottom[0].diff.dtype == np.float32
    np.testing.assert_allclose(bottom[0].diff, [[0, 0, 1, -1]], atol=1e-6)


def _inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4)) * 2
    t = rng.uniform(0, 1, (3, 4))
    t[0, 1] = t[2, 3] = t[2, 0] = -1.0             # ignored with ignore_label -1
    t[1, 2] = -0.5                                  # int(-0.5) = 0: not ignored
    return x, t


@pytest.mark.parametrize("params,divisor", [
    ("", 3),                                                       # BATCH_SIZE default
    ("loss_param { normalization: FULL }", 12),                    # FULL ignores ignoring
    ("loss_param { normalization: VALID }", 9),
    ("loss_param { normalization: BATCH_SIZE }", 3),
    ("loss_param { normalization: NONE }", 1),
    ("loss_param { normalize: true }", 9),                          # legacy -> VALID
    ("loss_param { normalize: false }", 3),                         # legacy -> BATCH_SIZE
    ("loss_param { normalize: true normalization: NONE }", 1)])     # normalization wins
def test_normalisation_modes_with_ignore_label(params, divisor):
    x, t = _inputs()
    if "loss_param {" in params:
        params = params.replace("loss_param {", "loss_param { ignore_label: -1")
    else:
        params = "loss_param { ignore_label: -1 }"
    layer, bottom, top = run(params, x, t)
    total, kept = reference(x, t, ignore=-1)
    assert kept == 9
    np.testing.assert_allclose(top[0].data, total / divisor, rtol=1e-10)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    s = 1 / (1 + np.exp(-x))
    expected = (s - t) / divisor
    expected[t == -1] = 0
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-10, atol=1e-15)


def test_ignore_label_compares_truncated_target():
    x = np.array([[0.3, -1.2, 2.0]])
    t = np.array([[0.7, 1.0, 0.0]])           # int(0.7) == 0 == ignore_label
    _, _, top = run("loss_param { ignore_label: 0 normalization: VALID }", x, t)
    total, kept = reference(x, t, ignore=0)
    assert kept == 1
    np.testing.assert_allclose(top[0].data, total, rtol=1e-12)


@pytest.mark.parametrize("mode", ["VALID", "NONE"])
def test_normaliser_is_clamped_to_one(mode):
    x = np.array([[0.5, -0.5]])
    t = np.array([[-1.0, -1.0]])
    layer, bottom, top = run(f"loss_param {{ ignore_label: -1 normalization: {mode} }}", x, t)
    assert top[0].data == 0
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    assert (bottom[0].diff == 0).all()


@pytest.mark.parametrize("params", ["", "loss_param { ignore_label: -1 normalization: VALID }"])
def test_gradient(params):
    x, t = _inputs()
    bottom = make_blobs([x, t])
    layer, top = build_layer(layer_param(params), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_loss_weight_scales_loss_and_gradient():
    x, t = _inputs()
    t = np.abs(t)
    layer, bottom, top = run("", x, t)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    unit = bottom[0].diff.copy()
    layer, bottom, top = run("loss_weight: 0.25", x, t)
    loss = layer.Forward(bottom, top)
    assert loss == pytest.approx(0.25 * reference(x, t)[0] / 3, rel=1e-10)
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, 0.25 * unit, rtol=1e-12)


def test_propagate_down_false_leaves_diff():
    x, t = _inputs()
    layer, bottom, top = run("", x, t)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_label_gradient_is_an_error():
    x, t = _inputs()
    layer, bottom, top = run("", x, t)
    assert not layer.allow_force_backward(1) and layer.allow_force_backward(0)
    with pytest.raises(LayerError, match=r"'sce'.*cannot backpropagate to label"):
        layer.Backward(top, [True, True], bottom)


@pytest.mark.parametrize("shape_x,shape_t,match", [
    ((2, 3), (3, 2), r"same first dimension.*\(2, 3\).*\(3, 2\)"),
    ((2, 3), (2, 4), r"same count.*\(2, 3\).*\(2, 4\)")])
def test_shape_errors(shape_x, shape_t, match):
    with pytest.raises(CaffeliteError, match=r"'sce'.*" + match):
        build_layer(layer_param(), make_blobs([np.zeros(shape_x), np.zeros(shape_t)]))


def test_same_count_different_shape_is_accepted():
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((2, 6)), rng.uniform(0, 1, (2, 3, 2))
    _, _, top = run("", x, t)
    np.testing.assert_allclose(top[0].data, reference(x, t)[0] / 2, rtol=1e-10)
