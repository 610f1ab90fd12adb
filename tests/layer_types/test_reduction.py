"""Reduction: every operation against a loop reference, gradients, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

OPS = ["SUM", "ASUM", "SUMSQ", "MEAN"]


def layer_param(params=""):
    return text_format.Parse(f'name: "red" type: "Reduction" bottom: "x" top: "y" '
                             f'reduction_param {{ {params} }}', caffe_pb2.LayerParameter())


def reference(x, op, axis, coeff):
    axis = axis % x.ndim if x.ndim else 0
    out = np.empty(x.shape[:axis])
    for idx in np.ndindex(*x.shape[:axis]):
        vals = x[idx].ravel()
        total = 0.0
        for v in vals:
            total += {"SUM": v, "ASUM": abs(v), "SUMSQ": v * v, "MEAN": v}[op]
        if op == "MEAN":
            total /= len(vals)
        out[idx] = coeff * total
    return out


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("axis,coeff", [(0, 1.0), (1, -0.5), (2, 2.0), (-1, 1.0)])
def test_forward_matches_reference(op, axis, coeff):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"operation: {op} axis: {axis} coeff: {coeff}"),
                             bottom)
    layer.Forward(bottom, top)
    expected = reference(x, op, axis, coeff)
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


def test_default_is_sum_to_a_scalar():
    x = np.arange(6.0).reshape(2, 3)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == ()
    assert float(top[0].data) == 15.0


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("axis,coeff", [(0, 1.0), (1, -0.5), (-1, 3.0)])
def test_gradient(op, axis, coeff):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 1.0, (2, 3, 4)) * rng.choice([-1, 1], (2, 3, 4))   # away from 0
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"operation: {op} axis: {axis} coeff: {coeff}"),
                             bottom)
    check_gradients(layer, bottom, top)


def test_asum_gradient_at_zero_is_zero():
    """Caffe's sign(0) is 0."""
    x = np.array([[0.0, 1.0, -2.0]])
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param("operation: ASUM axis: 1"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 2.0
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [[0.0, 2.0, -2.0]])


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param("axis: 1"), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


def test_bad_axis_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'red'.*reduction_param.axis.*\(2, 3\)"):
        build_layer(layer_param("axis: 3"), make_blobs([np.ones((2, 3))]))


@pytest.mark.parametrize("case", ["reduction_asum", "reduction_mean", "reduction_sum",
                                  "reduction_sumsq"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
