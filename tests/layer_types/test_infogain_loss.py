"""InfogainLoss: forward against a loop reference (H from a binaryproto file or a third
bottom), axis, ignore_label, normalisation modes, the prob top, backward per Caffe's formula,
numeric gradients, loss weight, errors."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError, LayerError
from caffelite.formats.blobproto import array_to_blobproto
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="", bottoms=("x", "l"), tops=("loss",)):
    text = " ".join([f'bottom: "{b}"' for b in bottoms] + [f'top: "{t}"' for t in tops])
    return text_format.Parse(f'name: "ig" type: "InfogainLoss" {text} {params}',
                             caffe_pb2.LayerParameter())


def write_h(path, h, legacy_dims=True):
    path.write_bytes(array_to_blobproto(h, legacy_dims=legacy_dims).SerializeToString())
    return path


def softmax_ref(x, axis):
    x = np.moveaxis(x, axis, -1)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return np.moveaxis(e / e.sum(axis=-1, keepdims=True), -1, axis)


def reference(x, label, h, axis=1, ignore=None, mode="VALID"):
    """Loss and Caffe's gradient (for loss weight 1), position by position."""
    p = np.moveaxis(softmax_ref(x, axis), axis, -1)      # (..., L) with the class axis last
    L = p.shape[-1]
    pos = p.reshape(-1, L)
    labels = label.reshape(-1)
    grad = np.zeros_like(pos)
    total, kept = 0.0, 0
    for k in range(pos.shape[0]):
        y = int(labels[k])
        if ignore is not None and y == ignore:
            continue
        for l in range(L):
            total -= h[y, l] * np.log(max(pos[k, l], 1e-20))
            grad[k, l] = pos[k, l] * h[y].sum() - h[y, l]
        kept += 1
    outer = int(np.prod(x.shape[:axis % x.ndim]))
    divisor = {"FULL": pos.shape[0], "VALID": kept, "BATCH_SIZE": outer, "NONE": 1}[mode]
    divisor = max(divisor, 1)
    grad = np.moveaxis(grad.reshape(p.shape), -1, axis) / divisor
    return total / divisor, grad


def infogain(L, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (L, L)) + np.eye(L)


def run(params, x, label, h=None, tops=("loss",), dtype=np.float64):
    arrays = [x, label] + ([h] if h is not None else [])
    bottom = make_blobs(arrays, dtype=dtype)
    names = ("x", "l", "H")[:len(arrays)]
    layer, top = build_layer(layer_param(params, names, tops), bottom, dtype=dtype)
    layer.Forward(bottom, top)
    return layer, bottom, top


@pytest.mark.parametrize("shape,axis", [((4, 3), 1), ((2, 3, 2, 2), 1), ((2, 2, 4), -1),
                                        ((3, 2, 4), 1), ((2, 3, 4), 2)])
def test_forward_and_backward_with_source(tmp_path, shape, axis):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 2
    L = shape[axis]
    label = rng.integers(0, L, x.size // L).astype(np.float64)
    label_shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    h = infogain(L)
    src = write_h(tmp_path / "H.binaryproto", h)
    p = f'infogain_loss_param {{ source: "{src}" axis: {axis} }}'
    layer, bottom, top = run(p, x, label.reshape(label_shape))
    loss, grad = reference(x, label, h.astype(np.float32).astype(np.float64), axis)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-10)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, grad, rtol=1e-10, atol=1e-14)


def test_identity_h_matches_softmax_with_loss():
    rng = np.random.default_rng(2)
    x, label = rng.standard_normal((5, 4)), np.array([0.0, 3.0, 1.0, 1.0, 2.0])
    layer, bottom, top = run("", x, label, np.eye(4))
    lp = text_format.Parse('name: "sm" type: "SoftmaxWithLoss" bottom: "x" bottom: "l" '
                           'top: "loss"', caffe_pb2.LayerParameter())
    sm_bottom = make_blobs([x, label])
    sm, sm_top = build_layer(lp, sm_bottom)
    sm.Forward(sm_bottom, sm_top)
    np.testing.assert_allclose(top[0].data, sm_top[0].data, rtol=1e-12)
    layer.Backward(top, [True, False, False], bottom)
    sm.Backward(sm_top, [True, False], sm_bottom)
    np.testing.assert_allclose(bottom[0].diff, sm_bottom[0].diff, rtol=1e-10, atol=1e-15)


def _spatial():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 2))
    label = rng.integers(0, 3, (2, 1, 2, 2)).astype(np.float64)
    label[0, 0, 1, 1] = label[1, 0, 0, 0] = 7        # ignored with ignore_label 7
    return x, label, infogain(3, 4)


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE", None])
def test_normalisation_and_ignore_label(mode):
    x, label, h = _spatial()
    norm = f"normalization: {mode}" if mode else ""
    layer, bottom, top = run(f"loss_param {{ ignore_label: 7 {norm} }}", x, label, h)
    loss, grad = reference(x, label, h, ignore=7, mode=mode or "VALID")
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-10)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, grad, rtol=1e-10, atol=1e-14)
    assert (bottom[0].diff[0, :, 1, 1] == 0).all() and (bottom[0].diff[1, :, 0, 0] == 0).all()


def test_all_ignored_gives_zero_loss():
    x, label, h = _spatial()
    layer, bottom, top = run("loss_param { ignore_label: 1 }", x, np.ones_like(label), h)
    assert top[0].data == 0
    layer.Backward(top, [True, False, False], bottom)
    assert (bottom[0].diff == 0).all()


@pytest.mark.parametrize("params", ["", "loss_param { ignore_label: 7 normalization: FULL }",
                                    "infogain_loss_param { axis: 1 }"])
def test_gradient_with_h_bottom(params):
    x, label, h = _spatial()
    if "ignore" not in params:
        label[label == 7] = 2
    bottom = make_blobs([x, label, h])
    layer, top = build_layer(layer_param(params, ("x", "l", "H")), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_gradient_with_source_and_prob_top(tmp_path):
    rng = np.random.default_rng(5)
    x, label = rng.standard_normal((3, 4)), np.array([3.0, 0.0, 2.0])
    src = write_h(tmp_path / "h.binaryproto", infogain(4, 6), legacy_dims=False)
    bottom = make_blobs([x, label])
    layer, top = build_layer(layer_param(f'infogain_loss_param {{ source: "{src}" }}',
                                         tops=("loss", "prob")), bottom)
    assert layer.loss_weights == [1.0, 0.0]
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[1].data, softmax_ref(x, 1), rtol=1e-12)
    # Caffe's backward reads only the loss top's diff.
    check_gradients(layer, bottom, top, check_bottom=[0], check_top=[0])


def test_loss_weight_scales_loss_and_gradient():
    x, label, h = _spatial()
    label[label == 7] = 0
    layer, bottom, top = run("", x, label, h)
    layer.Backward(top, [True, False, False], bottom)
    unit = bottom[0].diff.copy()
    layer, bottom, top = run("loss_weight: 0.5", x, label, h)
    loss = layer.Forward(bottom, top)
    assert loss == pytest.approx(0.5 * reference(x, label, h)[0], rel=1e-10)
    layer.Backward(top, [True, False, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, 0.5 * unit, rtol=1e-12)


def test_float32():
    x, label, h = _spatial()
    label[label == 7] = 1
    layer, bottom, top = run("", x, label, h, dtype=np.float32)
    layer.Backward(top, [True, False, False], bottom)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32
    loss, grad = reference(x.astype(np.float32).astype(np.float64), label,
                           h.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-5)
    np.testing.assert_allclose(bottom[0].diff, grad, rtol=1e-4, atol=1e-6)


def test_propagate_down_false_leaves_diff():
    x, label, h = _spatial()
    layer, bottom, top = run("loss_param { ignore_label: 7 }", x, label, h)
    for b in bottom:
        b.diff[...] = 7.0
    layer.Backward(top, [False, False, False], bottom)
    assert all((b.diff == 7.0).all() for b in bottom)


def test_label_and_h_gradients_are_errors():
    x, label, h = _spatial()
    layer, bottom, top = run("loss_param { ignore_label: 7 }", x, label, h)
    assert [layer.allow_force_backward(i) for i in range(3)] == [True, False, False]
    with pytest.raises(LayerError, match=r"'ig'.*cannot backpropagate to label"):
        layer.Backward(top, [True, True, False], bottom)
    with pytest.raises(LayerError, match=r"'ig'.*cannot backpropagate into the infogain"):
        layer.Backward(top, [True, False, True], bottom)


@pytest.mark.parametrize("label", [[0.0, 3.0], [-1.0, 0.0]])
def test_label_out_of_range_is_an_error(label):
    with pytest.raises(LayerError, match=r"'ig'.*InfogainLoss.*label value.*\[0, 3\)"):
        run("", np.zeros((2, 3)), np.array(label), np.eye(3))


def test_ignored_label_may_be_out_of_range():
    _, _, top = run("loss_param { ignore_label: -1 }", np.zeros((2, 3)), np.array([-1.0, 2.0]),
                    np.eye(3))
    np.testing.assert_allclose(top[0].data, np.log(3), rtol=1e-12)


def test_missing_source_file_names_it(tmp_path):
    missing = tmp_path / "nope.binaryproto"
    with pytest.raises(CaffeliteError, match=r"'ig'.*infogain_loss_param.source.*nope"):
        run(f'infogain_loss_param {{ source: "{missing}" }}', np.zeros((2, 3)),
            np.zeros(2))


@pytest.mark.parametrize("params,h,match", [
    ("", None, r"infogain_loss_param.source must name"),
    ("loss_param { normalize: true }", np.eye(3), r"loss_param.normalize is deprecated"),
    ("", np.eye(2), r"must be 3x3.*\(2, 2\)"),
    ("infogain_loss_param { axis: 2 }", np.eye(3), r"infogain_loss_param.axis.*\(2, 3\)")])
def test_parameter_errors(params, h, match):
    with pytest.raises(CaffeliteError, match=r"'ig'.*InfogainLoss.*" + match):
        run(params, np.zeros((2, 3)), np.zeros(2), h)


def test_wrong_size_source_names_file(tmp_path):
    src = write_h(tmp_path / "small.binaryproto", np.eye(2))
    with pytest.raises(CaffeliteError, match=r"'ig'.*3x3.*small.binaryproto"):
        run(f'infogain_loss_param {{ source: "{src}" }}', np.zeros((2, 3)), np.zeros(2))


@pytest.mark.parametrize("shape_x,shape_l,match", [
    ((2, 3), (3,), r"same first dimension"),
    ((2, 3, 2), (2, 3), r"number of labels.*need 4 labels.*\(2, 3\) has 6")])
def test_shape_errors(shape_x, shape_l, match):
    with pytest.raises(CaffeliteError, match=r"'ig'.*" + match):
        run("", np.zeros(shape_x), np.zeros(shape_l), np.eye(3))
