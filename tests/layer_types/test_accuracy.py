"""Accuracy: top-k with ties counted against, ignore_label, axis, the per-class top,
errors, and Caffe's fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, make_blobs


def layer_param(params="", tops=("acc",)):
    top = " ".join(f'top: "{t}"' for t in tops)
    return text_format.Parse(f'name: "acc" type: "Accuracy" bottom: "x" bottom: "l" {top} '
                             f'{params}', caffe_pb2.LayerParameter())


def reference(x, label, top_k=1, axis=1, ignore=None):
    """(accuracy, per-class accuracy) by loops, as Caffe 1.0's CPU code counts."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    lab = np.asarray(label).reshape(x.shape[:-1])
    C = x.shape[-1]
    correct = count = 0
    hits, seen = np.zeros(C), np.zeros(C)
    for idx in np.ndindex(x.shape[:-1]):
        k = int(lab[idx])
        if ignore is not None and k == ignore:
            continue
        seen[k] += 1
        better = sum(1 for c in range(C) if x[idx][c] >= x[idx][k])
        if better <= top_k:
            correct += 1
            hits[k] += 1
        count += 1
    acc = correct / count if count else 0.0
    per_class = np.where(seen > 0, hits / np.maximum(seen, 1), 0.0)
    return acc, per_class


def run(lp, x, label, dtype=np.float64):
    bottom = make_blobs([x, label], dtype=dtype)
    layer, top = build_layer(lp, bottom, dtype=dtype)
    layer.Forward(bottom, top)
    return layer, top


@pytest.mark.parametrize("params,top_k,ignore", [
    ("", 1, None), ("accuracy_param { top_k: 2 }", 2, None),
    ("accuracy_param { top_k: 3 ignore_label: 1 }", 3, 1),
    ("accuracy_param { ignore_label: 0 }", 1, 0)])
def test_matches_reference(params, top_k, ignore):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 5))
    x[3] = x[3, 0]                                  # a row of ties
    x[4, 2] = x[4, 1]
    label = rng.integers(0, 5, size=20).astype(float)
    _, top = run(layer_param(params, ("acc", "per_class")), x, label)
    acc, per_class = reference(x, label, top_k, ignore=ignore)
    assert top[0].shape == () and top[1].shape == (5,)
    np.testing.assert_allclose(top[0].data, acc, rtol=1e-12)
    np.testing.assert_allclose(top[1].data, per_class, rtol=1e-12)


def test_ties_count_against_you():
    x = np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 1.0], [0.0, 3.0, 3.0]])
    _, top = run(layer_param(), x, np.array([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(top[0].data, 1 / 3)      # only row 1 has a strict winner
    _, top = run(layer_param("accuracy_param { top_k: 2 }"), x, np.array([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(top[0].data, 1.0)


def test_spatial_axis_and_truncated_labels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 2))
    label = rng.integers(0, 4, size=(2, 3, 2)) + 0.9
    _, top = run(layer_param("accuracy_param { axis: 2 }", ("acc", "pc")), x, label)
    acc, per_class = reference(x, np.floor(label), axis=2)
    np.testing.assert_allclose(top[0].data, acc, rtol=1e-12)
    np.testing.assert_allclose(top[1].data, per_class, rtol=1e-12)


def test_nothing_counted_gives_zero():
    _, top = run(layer_param("accuracy_param { ignore_label: 2 }", ("a", "b")),
                 np.zeros((3, 4)), np.full(3, 2.0))
    assert top[0].data == 0 and (top[1].data == 0).all()


def test_float32():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 3)).astype(np.float32)
    label = rng.integers(0, 3, size=7).astype(np.float32)
    _, top = run(layer_param(), x, label, dtype=np.float32)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, reference(x, label)[0], rtol=1e-6)


def test_no_backward():
    layer, top = run(layer_param(), np.zeros((2, 3)), np.zeros(2))
    bottom = make_blobs([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(CaffeliteError, match="'acc'.*no backward"):
        layer.Backward(top, [True, False], bottom)
    layer.Backward(top, [False, False], bottom)       # nothing requested: fine


def test_top_k_larger_than_classes():
    with pytest.raises(CaffeliteError, match=r"'acc'.*top_k.*\(2, 3\)"):
        build_layer(layer_param("accuracy_param { top_k: 4 }"),
                    make_blobs([np.zeros((2, 3)), np.zeros(2)]))


def test_label_count_mismatch():
    with pytest.raises(CaffeliteError, match=r"'acc'.*\(2, 3, 4\).*\(2, 3\)"):
        build_layer(layer_param(), make_blobs([np.zeros((2, 3, 4)), np.zeros((2, 3))]))


def test_label_out_of_range():
    bottom = make_blobs([np.zeros((2, 3)), np.array([1.0, 5.0])])
    layer, top = build_layer(layer_param(), bottom)
    with pytest.raises(CaffeliteError, match=r"'acc'.*label value 5 outside \[0, 3\)"):
        layer.Forward(bottom, top)


@pytest.mark.parametrize("case", ["accuracy_top1", "accuracy_top3_ignore"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
