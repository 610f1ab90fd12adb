"""Eltwise layer: PROD / SUM (coeff) / MAX forward, Caffe's MAX tie rule, gradients, errors."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay


def layer_param(n_bottom, text=""):
    bottoms = " ".join(f'bottom: "x{i}"' for i in range(n_bottom))
    return text_format.Parse(f'name: "elt" type: "Eltwise" {bottoms} top: "y" '
                             f'eltwise_param {{ {text} }}', caffe_pb2.LayerParameter())




def inputs(n, shape=(2, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


def distinct_inputs(n, shape=(2, 3, 2)):
    """Values at least 0.1 apart across all bottoms, so max has no near-ties."""
    count = int(np.prod(shape))
    values = np.random.default_rng(7).permutation(n * count) * 0.1 - n * count * 0.05
    return [values[i * count:(i + 1) * count].reshape(shape) for i in range(n)]


def run(lp, xs):
    bottom = make_blobs(xs)
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    return layer, bottom, top


@pytest.mark.parametrize("n", [2, 3, 4])
def test_forward_prod_sum_max(n):
    xs = inputs(n)
    ref_prod, ref_sum, ref_max = xs[0].copy(), xs[0].copy(), xs[0].copy()
    for x in xs[1:]:
        ref_prod = ref_prod * x
        ref_sum = ref_sum + x
        ref_max = np.where(x > ref_max, x, ref_max)
    for op, ref in (("PROD", ref_prod), ("SUM", ref_sum), ("MAX", ref_max)):
        _, _, top = run(layer_param(n, f"operation: {op}"), xs)
        np.testing.assert_allclose(top[0].data, ref, rtol=1e-12, atol=1e-15)
        assert top[0].shape == (2, 3, 4)


def test_default_operation_is_sum():
    xs = inputs(2)
    _, _, top = run(layer_param(2), xs)
    np.testing.assert_allclose(top[0].data, xs[0] + xs[1], rtol=1e-12)


def test_sum_with_coeff():
    xs = inputs(3)
    _, _, top = run(layer_param(3, "operation: SUM coeff: 1.5 coeff: -0.5 coeff: 2"), xs)
    np.testing.assert_allclose(top[0].data, 1.5 * xs[0] - 0.5 * xs[1] + 2 * xs[2],
                               rtol=1e-12, atol=1e-14)


def test_max_tie_rule_and_backward_mask():
    # per element: (a, b, c) and the bottom Caffe's rule makes the winner
    a = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 5.0])
    b = np.array([1.0, 0.0, 3.0, 4.0, 2.0, 1.0])
    c = np.array([1.0, 2.0, 5.0, 4.0, 2.0, 0.0])
    winners = [1, 0, 2, 1, 1, 0]  # a==b -> b; later bottoms need strictly greater
    layer, bottom, top = run(layer_param(3, "operation: MAX"), [a, b, c])
    np.testing.assert_array_equal(top[0].data, np.maximum(np.maximum(a, b), c))
    dy = np.arange(1.0, 7.0)
    top[0].diff[...] = dy
    layer.Backward(top, [True, True, True], bottom)
    for i in range(3):
        expected = np.where(np.array(winners) == i, dy, 0.0)
        np.testing.assert_array_equal(bottom[i].diff, expected)


def test_max_tie_two_bottoms_goes_to_bottom_1():
    a = np.array([3.0, 1.0])
    b = np.array([3.0, 0.5])
    layer, bottom, top = run(layer_param(2, "operation: MAX"), [a, b])
    top[0].diff[...] = 1.0
    layer.Backward(top, [True, True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [0.0, 1.0])
    np.testing.assert_array_equal(bottom[1].diff, [1.0, 0.0])


@pytest.mark.parametrize("text, xs", [
    ("operation: PROD", inputs(3, (2, 3, 2), seed=1)),
    ("operation: PROD stable_prod_grad: false", [x + np.sign(x) * 0.5
                                                for x in inputs(3, (2, 3, 2), seed=2)]),
    ("operation: SUM", inputs(2, (2, 3, 2), seed=3)),
    ("operation: SUM coeff: 1.5 coeff: -0.5 coeff: 2", inputs(3, (2, 3, 2), seed=4)),
    ("operation: MAX", distinct_inputs(2)),
    ("operation: MAX", distinct_inputs(3)),
])
def test_gradients(text, xs):
    bottom = make_blobs(xs)
    layer, top = build_layer(layer_param(len(xs), text), bottom)
    check_gradients(layer, bottom, top)


def test_prod_unstable_grad_formula():
    xs = [x + np.sign(x) for x in inputs(3, (4,), seed=5)]
    layer, bottom, top = run(layer_param(3, "operation: PROD stable_prod_grad: false"), xs)
    top[0].diff[...] = 2.0
    layer.Backward(top, [True] * 3, bottom)
    y = xs[0] * xs[1] * xs[2]
    for i in range(3):
        np.testing.assert_allclose(bottom[i].diff, 2.0 * y / xs[i], rtol=1e-12)


@pytest.mark.parametrize("op", ["PROD", "SUM", "MAX"])
def test_propagate_down_false_leaves_diff(op):
    layer, bottom, top = run(layer_param(3, f"operation: {op}"), distinct_inputs(3))
    top[0].diff[...] = 1.0
    for b in bottom:
        b.diff[...] = 9.0
    layer.Backward(top, [True, False, True], bottom)
    assert (bottom[1].diff == 9.0).all()
    assert not (bottom[0].diff == 9.0).all()


def test_shape_mismatch_names_shapes():
    lp = layer_param(2)
    with pytest.raises(CaffeliteError, match=r"elt.*Eltwise.*\(2, 3\).*\(3, 2\)"):
        build_layer(lp, make_blobs([np.zeros((2, 3)), np.zeros((3, 2))]))


def test_shape_mismatch_on_later_reshape():
    bottom = make_blobs([np.zeros((2, 3)), np.zeros((2, 3))])
    layer, top = build_layer(layer_param(2), bottom)
    bottom[1].reshape(2, 4)
    with pytest.raises(CaffeliteError, match=r"\(2, 4\)"):
        layer.Forward(bottom, top)


def test_needs_two_bottoms():
    with pytest.raises(CaffeliteError, match="elt.*at least 2 bottom"):
        build_layer(layer_param(1), make_blobs([np.zeros(3)]))


def test_coeff_count_checked():
    with pytest.raises(CaffeliteError, match="elt.*coeff"):
        build_layer(layer_param(3, "operation: SUM coeff: 1 coeff: 2"),
                    make_blobs(inputs(3)))


def test_coeff_rejected_with_prod():
    with pytest.raises(CaffeliteError, match="elt.*coeff.*PROD"):
        build_layer(layer_param(2, "operation: PROD coeff: 1 coeff: 2"),
                    make_blobs(inputs(2)))


def test_coeff_with_max_is_accepted_and_unused():
    # Caffe 1.0's setup only rejects coefficients for PROD; MAX ignores them.
    xs = distinct_inputs(2)
    _, _, top = run(layer_param(2, "operation: MAX coeff: 3 coeff: 4"), xs)
    np.testing.assert_array_equal(top[0].data, np.maximum(xs[0], xs[1]))


def test_float32_stays_float32():
    xs = inputs(2)
    bottom = make_blobs(xs, dtype=np.float32)
    for op in ("PROD", "SUM", "MAX"):
        layer, top = build_layer(layer_param(2, f"operation: {op} "), bottom, dtype=np.float32)
        layer.Forward(bottom, top)
        assert top[0].data.dtype == np.float32


@pytest.mark.parametrize("name", ["eltwise_max", "eltwise_prod", "eltwise_sum_coeff"])
def test_fixtures(fixtures_dir, name):
    replay(fixtures_dir, name)
