"""ArgMax: top-k against a sorting reference (ties to the larger index), shapes with and
without axis, no backward, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, make_blobs


def layer_param(params=""):
    return text_format.Parse(f'name: "am" type: "ArgMax" bottom: "x" top: "y" '
                             f'argmax_param {{ {params} }}', caffe_pb2.LayerParameter())


def top_k(values, k):
    """(index, value) of the k largest, ordered by (value, index) descending."""
    pairs = sorted(((v, j) for j, v in enumerate(values)), reverse=True)[:k]
    return [j for _, j in pairs], [v for v, _ in pairs]


def reference_flat(x, k, out_max_val):
    n = x.shape[0]
    shape = [1] * max(x.ndim, 3)
    shape[0], shape[1], shape[2] = n, 2 if out_max_val else 1, k
    out = np.zeros(shape)
    flat = out.reshape(n, -1)
    for i in range(n):
        idx, val = top_k(list(x[i].ravel()), k)
        flat[i, :k] = idx
        if out_max_val:
            flat[i, k:2 * k] = val
    return out


def reference_axis(x, axis, k, out_max_val):
    xm = np.moveaxis(x, axis, -1)
    out = np.empty(xm.shape[:-1] + (k,))
    for i in np.ndindex(xm.shape[:-1]):
        idx, val = top_k(list(xm[i]), k)
        out[i] = val if out_max_val else idx
    return np.moveaxis(out, -1, axis)


def run(params, x, dtype=np.float64):
    bottom = make_blobs([x], dtype=dtype)
    layer, top = build_layer(layer_param(params), bottom, dtype=dtype)
    layer.Forward(bottom, top)
    return top[0]


@pytest.mark.parametrize("shape", [(3, 2, 2, 3), (4, 5), (2, 6, 1)])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("out_max_val", [False, True])
def test_flat_matches_reference(shape, k, out_max_val):
    x = np.random.default_rng(0).standard_normal(shape)
    top = run(f"top_k: {k} out_max_val: {str(out_max_val).lower()}", x)
    expected = reference_flat(x, k, out_max_val)
    assert top.shape == expected.shape
    np.testing.assert_array_equal(top.data, expected)


@pytest.mark.parametrize("shape,axis", [((2, 5, 3), 1), ((2, 5, 3), 0), ((2, 5, 3), -1),
                                        ((6,), 0), ((2, 3, 4, 2), 2)])
@pytest.mark.parametrize("out_max_val", [False, True])
def test_axis_matches_reference(shape, axis, out_max_val):
    x = np.random.default_rng(1).standard_normal(shape)
    k = 2
    top = run(f"axis: {axis} top_k: {k} out_max_val: {str(out_max_val).lower()}", x)
    expected = reference_axis(x, axis, k, out_max_val)
    assert top.shape == expected.shape
    np.testing.assert_array_equal(top.data, expected)


def test_ties_go_to_the_larger_index():
    x = np.array([[1.0, 3.0, 2.0, 3.0, 3.0, 0.0]], dtype=np.float32)
    top = run("top_k: 4 out_max_val: true", x, dtype=np.float32)
    assert top.shape == (1, 2, 4)
    np.testing.assert_array_equal(top.data[0, 0], [4, 3, 1, 2])
    np.testing.assert_array_equal(top.data[0, 1], [3, 3, 3, 2])
    top = run("axis: 1 top_k: 2", x, dtype=np.float32)
    np.testing.assert_array_equal(top.data, [[4, 3]])
    # all equal along axis 0
    top = run("axis: 0", np.zeros((3, 2)))
    np.testing.assert_array_equal(top.data, [[2, 2]])


def test_default_top_k_is_one_index():
    x = np.array([[0.5, 2.0, -1.0], [9.0, 1.0, 1.0]])
    top = run("", x)
    assert top.shape == (2, 1, 1)
    np.testing.assert_array_equal(top.data.ravel(), [1, 0])


def test_backward_is_an_error():
    x = np.random.default_rng(2).standard_normal((2, 3))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)        # nothing asked: nothing done
    assert (bottom[0].diff == 7.0).all()
    with pytest.raises(CaffeliteError, match=r"'am'.*ArgMax.*no backward"):
        layer.Backward(top, [True], bottom)


@pytest.mark.parametrize("params,pattern", [
    ("top_k: 7", r"top_k \(7\).*count\(1\).*6.*\(2, 3, 2\)"),
    ("axis: 1 top_k: 4", r"top_k \(4\).*axis 1.*3.*\(2, 3, 2\)"),
    ("top_k: 0", r"argmax_param.top_k must be at least 1"),
    ("axis: 3", r"argmax_param.axis.*\(2, 3, 2\)"),
])
def test_bad_params_are_errors(params, pattern):
    with pytest.raises(CaffeliteError, match=r"'am'.*ArgMax.*" + pattern):
        build_layer(layer_param(params), make_blobs([np.zeros((2, 3, 2))]))


@pytest.mark.parametrize("case", ["argmax_axis", "argmax_topk_maxval"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
