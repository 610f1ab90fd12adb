"""ContrastiveLoss: forward against a loop reference (current and legacy), backward against
Caffe's formula, numeric gradients, sim handling, loss weight, shape errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "cl" type: "ContrastiveLoss" bottom: "a" bottom: "b" '
                             f'bottom: "sim" top: "loss" {params}', caffe_pb2.LayerParameter())


def pairs(c=3, seed=0):
    """Six pairs at chosen distances: similar ones and dissimilar ones on both sides of 1.5
    (and of 2.0 in squared distance), away from the kinks."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((6, c))
    u = rng.standard_normal((6, c))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    dist = np.array([0.8, 0.5, 2.5, 1.3, 1.0, 3.0])
    b = a + u * dist[:, None]
    sim = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    return a, b, sim


def reference(a, b, sim, margin, legacy):
    n = a.shape[0]
    a, b = a.reshape(n, -1), b.reshape(n, -1)
    total = 0.0
    for i in range(n):
        d2 = sum((a[i, j] - b[i, j]) ** 2 for j in range(a.shape[1]))
        if int(sim.reshape(-1)[i]):
            total += d2
        elif legacy:
            total += max(margin - d2, 0.0)
        else:
            total += max(margin - np.sqrt(d2), 0.0) ** 2
    return total / (2 * n)


def reference_grad_a(a, b, sim, margin, legacy, w=1.0):
    """Caffe's backward for bottom a, written per pair (the d + 1e-4 is Caffe's)."""
    n = a.shape[0]
    g = np.zeros_like(a)
    for i in range(n):
        diff = a[i] - b[i]
        d = np.sqrt((diff ** 2).sum())
        if int(sim[i]):
            g[i] = w / n * diff
        elif legacy:
            g[i] = -w / n * diff if margin - d * d > 0 else 0
        else:
            g[i] = -w / n * (margin - d) / (d + 1e-4) * diff if margin - d > 0 else 0
    return g


@pytest.mark.parametrize("margin,legacy", [(1.5, False), (2.0, True), (1.0, False),
                                           (10.0, True)])
def test_forward_and_backward_match_reference(margin, legacy):
    a, b, sim = pairs()
    bottom = make_blobs([a, b, sim])
    p = f"contrastive_loss_param {{ margin: {margin} legacy_version: {str(legacy).lower()} }}"
    layer, top = build_layer(layer_param(p), bottom)
    loss = layer.Forward(bottom, top)
    expected = reference(a, b, sim, margin, legacy)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-6)
    assert loss == pytest.approx(expected, rel=1e-6)
    bottom[2].diff[...] = 5.0
    top[0].diff[...] = 0.75
    layer.Backward(top, [True, True, False], bottom)
    ga = reference_grad_a(a, b, sim, margin, legacy, w=0.75)
    np.testing.assert_allclose(bottom[0].diff, ga, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(bottom[1].diff, -ga, rtol=1e-6, atol=1e-12)
    assert (bottom[2].diff == 5.0).all()


def test_default_margin_and_4d_inputs():
    a, b, sim = pairs(c=4, seed=1)
    bottom = make_blobs([a.reshape(6, 4, 1, 1), b.reshape(6, 4, 1, 1),
                         sim.reshape(6, 1, 1, 1)])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(a, b, sim, 1.0, False), rtol=1e-6)
    top[0].diff[...] = 1
    layer.Backward(top, [True, False, False], bottom)
    assert bottom[0].diff.shape == (6, 4, 1, 1)
    np.testing.assert_allclose(bottom[0].diff.reshape(6, 4),
                               reference_grad_a(a, b, sim, 1.0, False), rtol=1e-6)


def test_sim_is_truncated_to_int():
    a, b, _ = pairs()
    sim = np.array([0.7, -1.0, 1.5, 0.0, 0.2, 2.0])   # similar where int(sim) != 0
    bottom = make_blobs([a, b, sim])
    layer, top = build_layer(layer_param("contrastive_loss_param { margin: 1.5 }"), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(a, b, sim, 1.5, False), rtol=1e-6)
    as_int = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(top[0].data, reference(a, b, as_int, 1.5, False), rtol=1e-6)


def test_gradient_legacy_is_exact():
    a, b, sim = pairs(seed=2)
    bottom = make_blobs([a, b, sim])
    p = "contrastive_loss_param { margin: 2.0 legacy_version: true }"
    layer, top = build_layer(layer_param(p), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0, 1])


def test_gradient_current_version():
    # Caffe divides by d + 1e-4 rather than d, so the analytic gradient of a dissimilar pair
    # is off by a relative 1e-4/d (the distances here are >= 0.5): hence rtol 1e-3.
    a, b, sim = pairs(seed=3)
    bottom = make_blobs([a, b, sim])
    layer, top = build_layer(layer_param("contrastive_loss_param { margin: 1.5 }"), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0, 1], rtol=1e-3)


def test_identical_dissimilar_pair_gives_finite_gradient():
    a = np.ones((2, 3))
    bottom = make_blobs([a, a.copy(), np.zeros(2)])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, 0.5)        # 2 * margin^2 / (2 * 2)
    layer.Backward(top, [True, True, False], bottom)
    assert np.isfinite(bottom[0].diff).all() and (bottom[0].diff == 0).all()


@pytest.mark.parametrize("down", [[True, False, False], [False, True, False],
                                  [False, False, False]])
def test_propagate_down_false_leaves_diff(down):
    a, b, sim = pairs()
    bottom = make_blobs([a, b, sim])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    for blob in bottom:
        blob.diff[...] = 7.0
    layer.Backward(top, down, bottom)
    for d, blob in zip(down, bottom):
        assert d or (blob.diff == 7.0).all()


def test_force_backward_skips_sim_only():
    a, b, sim = pairs()
    layer, _ = build_layer(layer_param(), make_blobs([a, b, sim]))
    assert [layer.allow_force_backward(i) for i in range(3)] == [True, True, False]


@pytest.mark.parametrize("shapes,match", [
    (((6, 3), (6, 4), (6,)), r"same num and channels"),
    (((6, 3), (5, 3), (6,)), r"same num and channels"),
    (((6, 3, 2), (6, 3, 2), (6,)), r"height and width 1.*\(6, 3, 2\)"),
    (((6, 3), (6, 3), (6, 2)), r"similarity input.*\(6, 2\)"),
    (((6, 3), (6, 3), (5,)), r"similarity input.*\(5,\)"),
    (((6, 3, 1, 1, 1), (6, 3, 1, 1, 1), (6,)), r"1 to 4 axes")])
def test_shape_errors(shapes, match):
    with pytest.raises(CaffeliteError, match=r"'cl'.*ContrastiveLoss.*" + match):
        build_layer(layer_param(), make_blobs([np.zeros(s) for s in shapes]))


@pytest.mark.parametrize("case", ["contrastive_loss", "contrastive_loss_legacy"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
