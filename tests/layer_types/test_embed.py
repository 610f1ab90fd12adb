"""Embed: lookup against a loop reference, parameter gradients (repeated indices
accumulate), no gradient to the indices, input and parameter errors, fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

FILLERS = ('weight_filler { type: "gaussian" std: 1 } '
           'bias_filler { type: "gaussian" std: 1 }')


def layer_param(params=f"num_output: 4 input_dim: 7 {FILLERS}"):
    return text_format.Parse(f'name: "emb" type: "Embed" bottom: "x" top: "y" '
                             f'embed_param {{ {params} }}', caffe_pb2.LayerParameter())


def reference(x, w, b):
    out = np.empty(x.shape + (w.shape[1],))
    for i in np.ndindex(x.shape):
        out[i] = w[int(x[i])] + (b if b is not None else 0)
    return out


INDICES = np.array([[0, 3, 6], [3, 3, 1]], dtype=np.float64)   # index 3 repeats


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x", [INDICES, np.array([5.0]), np.arange(7.0).reshape(7, 1, 1)])
def test_forward_matches_reference(bias, x):
    lp = layer_param(f"num_output: 4 input_dim: 7 bias_term: {str(bias).lower()} {FILLERS}")
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    assert len(layer.blobs) == (2 if bias else 1)
    assert layer.blobs[0].shape == (7, 4)
    layer.Forward(bottom, top)
    assert top[0].shape == x.shape + (4,)
    b = layer.blobs[1].data if bias else None
    np.testing.assert_allclose(top[0].data, reference(x, layer.blobs[0].data, b), rtol=1e-12)


def test_float32_forward():
    bottom = make_blobs([INDICES], dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, reference(INDICES, layer.blobs[0].data,
                                                      layer.blobs[1].data), rtol=1e-6)


def test_param_gradients():
    bottom = make_blobs([INDICES])
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top, check_bottom=[])


def test_param_diffs_accumulate():
    rng = np.random.default_rng(1)
    bottom = make_blobs([INDICES])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    layer.Backward(top, [False], bottom)
    once = [b.diff.copy() for b in layer.blobs]
    # rows never indexed get no gradient; the repeated index 3 sums its three rows
    np.testing.assert_array_equal(once[0][[2, 4, 5]], 0)
    dy = top[0].diff
    np.testing.assert_allclose(once[0][3], dy[0, 1] + dy[1, 0] + dy[1, 1], rtol=1e-12)
    layer.Backward(top, [False], bottom)
    for b, d in zip(layer.blobs, once):
        np.testing.assert_allclose(b.diff, 2 * d, rtol=1e-12)


def test_param_propagate_down_false_skips_that_param():
    bottom = make_blobs([INDICES])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.param_propagate_down = [False, True]
    layer.Backward(top, [False], bottom)
    assert (layer.blobs[0].diff == 0).all()
    np.testing.assert_allclose(layer.blobs[1].diff, 6.0)


def test_gradient_to_indices_is_an_error():
    bottom = make_blobs([INDICES])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    with pytest.raises(CaffeliteError, match=r"'emb'.*Embed.*back-propagate"):
        layer.Backward(top, [True], bottom)


@pytest.mark.parametrize("bad", [1.5, -1.0, 7.0, np.nan, np.inf])
def test_bad_indices_are_errors(bad):
    x = INDICES.copy()
    x[1, 2] = bad
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    with pytest.raises(CaffeliteError, match=r"'emb'.*integers in \[0, input_dim=7\)"):
        layer.Forward(bottom, top)


@pytest.mark.parametrize("params,field", [("input_dim: 7", "num_output"),
                                          ("num_output: 4", "input_dim")])
def test_missing_sizes_are_errors(params, field):
    with pytest.raises(CaffeliteError, match=rf"'emb'.*embed_param.{field}"):
        build_layer(layer_param(params), make_blobs([INDICES]))


def test_preloaded_blobs_are_used_and_checked():
    lp = layer_param()
    w = np.arange(28.0).reshape(7, 4)
    for arr in (w, np.zeros(4)):
        bp = lp.blobs.add()
        bp.shape.dim.extend(arr.shape)
        bp.data.extend(arr.ravel())
    bottom = make_blobs([INDICES])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(INDICES, w, np.zeros(4)))
    del lp.blobs[1]
    with pytest.raises(CaffeliteError, match=r"'emb'.*1 preloaded blobs, expected 2"):
        build_layer(lp, make_blobs([INDICES]))
    lp = layer_param("num_output: 4 input_dim: 6 bias_term: false")
    bp = lp.blobs.add()
    bp.shape.dim.extend(w.shape)
    bp.data.extend(w.ravel())
    with pytest.raises(CaffeliteError, match=r"'emb'.*\(7, 4\).*input_dim 6"):
        build_layer(lp, make_blobs([INDICES]))


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "embed")
