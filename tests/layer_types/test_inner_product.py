"""InnerProduct layer: forward vs loops (axis, transpose, no bias), gradients incl. params,
accumulation, preloaded blobs, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import replay

FILLERS = ('weight_filler { type: "gaussian" std: 0.5 } '
           'bias_filler { type: "uniform" min: -1 max: 1 }')


def layer_param(text):
    return text_format.Parse(f'name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                             f'inner_product_param {{ {text} }}', caffe_pb2.LayerParameter())




def ref_ip(x, w, b, axis, transpose):
    """Row-by-row loop: each leading index gets sum_k x_k W[o, k] (+ b_o)."""
    lead = x.shape[:axis]
    rows = x.reshape(int(np.prod(lead, dtype=int)), -1)
    wt = w.T if transpose else w                      # (num_output, K)
    out = np.zeros((rows.shape[0], wt.shape[0]))
    for m in range(rows.shape[0]):
        for o in range(wt.shape[0]):
            out[m, o] = sum(rows[m, k] * wt[o, k] for k in range(rows.shape[1]))
            if b is not None:
                out[m, o] += b[o]
    return out.reshape(lead + (wt.shape[0],))


CASES = [
    # param text, bottom shape, canonical axis, top shape
    ("num_output: 4", (2, 3, 2), 1, (2, 4)),
    ("num_output: 3 axis: 2", (2, 3, 4), 2, (2, 3, 3)),
    ("num_output: 3 axis: -1 transpose: true", (2, 3, 4), 2, (2, 3, 3)),
    ("num_output: 2 axis: 0", (3, 2), 0, (2,)),
    ("num_output: 5 bias_term: false", (3, 4), 1, (3, 5)),
    ("num_output: 2 transpose: true bias_term: false", (2, 2, 2), 1, (2, 2)),
]


@pytest.mark.parametrize("text, shape, axis, top_shape", CASES)
def test_forward(text, shape, axis, top_shape):
    x = np.random.default_rng(0).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(text + " " + FILLERS), bottom)
    layer.Forward(bottom, top)
    transpose = "transpose: true" in text
    k = int(np.prod(shape[axis:]))
    n = top_shape[-1]
    assert layer.blobs[0].shape == ((k, n) if transpose else (n, k))
    has_bias = "bias_term: false" not in text
    assert len(layer.blobs) == (2 if has_bias else 1)
    b = layer.blobs[1].data if has_bias else None
    assert top[0].shape == top_shape
    np.testing.assert_allclose(top[0].data, ref_ip(x, layer.blobs[0].data, b, axis, transpose),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("text, shape, axis, top_shape", CASES)
def test_gradients(text, shape, axis, top_shape):
    bottom = make_blobs([np.random.default_rng(1).standard_normal(shape)])
    layer, top = build_layer(layer_param(text + " " + FILLERS), bottom)
    check_gradients(layer, bottom, top)


def test_default_fillers_are_zero():
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param("num_output: 2"), bottom)
    assert (layer.blobs[0].data == 0).all() and (layer.blobs[1].data == 0).all()


def test_param_diffs_accumulate_and_propagate_down():
    rng = np.random.default_rng(2)
    bottom = make_blobs([rng.standard_normal((3, 4))])
    layer, top = build_layer(layer_param("num_output: 2 " + FILLERS), bottom)
    layer.param_propagate_down = [True, True]
    layer.Forward(bottom, top)
    top[0].diff[...] = rng.standard_normal((3, 2))
    bottom[0].diff[...] = 8.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 8.0).all()
    once = [b.diff.copy() for b in layer.blobs]
    np.testing.assert_allclose(once[0], top[0].diff.T @ bottom[0].data, rtol=1e-12)
    np.testing.assert_allclose(once[1], top[0].diff.sum(0), rtol=1e-12)
    layer.Backward(top, [False], bottom)
    for b, d in zip(layer.blobs, once):
        np.testing.assert_allclose(b.diff, 2 * d, rtol=1e-12)


def test_param_propagate_down_false_skips_param():
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param("num_output: 2 " + FILLERS), bottom)
    layer.param_propagate_down = [False, True]
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    assert (layer.blobs[0].diff == 0).all()
    assert (layer.blobs[1].diff == 2).all()


def test_preloaded_blobs_replace_fillers():
    lp = layer_param("num_output: 2 " + FILLERS)
    w = np.arange(6.0).reshape(2, 3)
    for arr in (w, np.array([1.0, -1.0])):
        bp = lp.blobs.add()
        bp.shape.dim.extend(arr.shape)
        bp.data.extend(arr.ravel())
    bottom = make_blobs([np.ones((1, 3))])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, [[3.0 + 1, 12.0 - 1]])


def test_preloaded_blob_count_checked():
    lp = layer_param("num_output: 2 bias_term: false")
    for _ in range(2):
        bp = lp.blobs.add()
        bp.shape.dim.extend([2])
        bp.data.extend([0.0, 0.0])
    with pytest.raises(CaffeliteError, match="ip.*InnerProduct.*2 preloaded blobs"):
        build_layer(lp, make_blobs([np.ones((1, 3))]))


def test_num_output_required():
    with pytest.raises(CaffeliteError, match="ip.*InnerProduct.*num_output"):
        build_layer(layer_param(""), make_blobs([np.ones((2, 3))]))


def test_axis_out_of_range():
    with pytest.raises(CaffeliteError, match=r"ip.*axis.*\(2, 3\)"):
        build_layer(layer_param("num_output: 2 axis: 2"), make_blobs([np.ones((2, 3))]))


def test_changed_input_size_names_shape():
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(layer_param("num_output: 2"), bottom)
    bottom[0].reshape(2, 4)
    with pytest.raises(CaffeliteError, match=r"ip.*InnerProduct.*\(2, 4\)"):
        layer.Forward(bottom, top)
    bottom[0].reshape(5, 3)  # a new batch size is fine
    layer.Forward(bottom, top)
    assert top[0].shape == (5, 2)


def test_float32():
    bottom = make_blobs([np.ones((2, 3))], dtype=np.float32)
    layer, top = build_layer(layer_param("num_output: 2 " + FILLERS), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32 and layer.blobs[0].data.dtype == np.float32


@pytest.mark.parametrize("name", ["ip_axis1", "ip_axis2_transpose"])
def test_fixtures(fixtures_dir, name):
    replay(fixtures_dir, name)
