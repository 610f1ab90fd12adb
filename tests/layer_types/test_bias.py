"""Bias: broadcast shapes, fillers, two bottoms, gradients, accumulation, in-place use,
errors, and Caffe's fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="", bottoms=("x",), top="y"):
    bot = " ".join(f'bottom: "{b}"' for b in bottoms)
    return text_format.Parse(f'name: "bias" type: "Bias" {bot} top: "{top}" {params}',
                             caffe_pb2.LayerParameter())


def reference(x, b, axis):
    """x + b with b's axes lined up at ``axis``, by explicit index loops."""
    out = np.array(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        out[idx] += b[idx[axis:axis + b.ndim]] if b.ndim else b
    return out


GAUSS = 'filler { type: "gaussian" std: 1 }'
SHAPES = [  # (params, bias shape, axis)
    (f"bias_param {{ {GAUSS} }}", (3,), 1),
    (f"bias_param {{ num_axes: 2 {GAUSS} }}", (3, 4), 1),
    (f"bias_param {{ num_axes: -1 {GAUSS} }}", (3, 4, 2), 1),
    (f"bias_param {{ num_axes: 0 {GAUSS} }}", (), 0),
    (f"bias_param {{ axis: -2 {GAUSS} }}", (4,), 2),
    (f"bias_param {{ axis: 0 num_axes: 2 {GAUSS} }}", (2, 3), 0),
]


@pytest.mark.parametrize("params,shape,axis", SHAPES)
def test_learned_bias_forward(params, shape, axis):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(params), bottom)
    assert layer.blobs[0].shape == shape
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, layer.blobs[0].data, axis))


def test_default_filler_is_zero():
    layer, _ = build_layer(layer_param(), make_blobs([np.ones((2, 3))]))
    assert (layer.blobs[0].data == 0).all()


@pytest.mark.parametrize("bshape,params,axis", [((3, 4), "", 1), ((), "", 0),
                                                ((4, 2), "bias_param { axis: 2 }", 2)])
def test_two_bottoms_forward(bshape, params, axis):
    rng = np.random.default_rng(1)
    x, b = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal(bshape)
    bottom = make_blobs([x, b])
    layer, top = build_layer(layer_param(params, ("x", "b")), bottom)
    assert layer.blobs == []
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, b, axis))


@pytest.mark.parametrize("params,shape,axis", SHAPES[:4])
def test_gradient_learned(params, shape, axis):
    bottom = make_blobs([np.random.default_rng(2).standard_normal((2, 3, 4, 2))])
    layer, top = build_layer(layer_param(params), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("bshape", [(3, 4), ()])
def test_gradient_two_bottoms(bshape):
    rng = np.random.default_rng(3)
    bottom = make_blobs([rng.standard_normal((2, 3, 4)), rng.standard_normal(bshape)])
    layer, top = build_layer(layer_param("", ("x", "b")), bottom)
    check_gradients(layer, bottom, top)


def test_param_diff_accumulates():
    rng = np.random.default_rng(4)
    bottom = make_blobs([rng.standard_normal((2, 3, 4))])
    layer, top = build_layer(layer_param(f"bias_param {{ {GAUSS} }}"), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    layer.blobs[0].diff[...] = 0
    layer.Backward(top, [True], bottom)
    once = layer.blobs[0].diff.copy()
    np.testing.assert_allclose(once, top[0].diff.sum(axis=(0, 2)))
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * once)


def test_propagate_down_false_leaves_diffs():
    rng = np.random.default_rng(5)
    bottom = make_blobs([rng.standard_normal((2, 3)), rng.standard_normal((3,))])
    layer, top = build_layer(layer_param("", ("x", "b")), bottom)
    layer.Forward(bottom, top)
    for b in bottom:
        b.diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False, False], bottom)
    assert all((b.diff == 7.0).all() for b in bottom)
    layer.Backward(top, [False, True], bottom)
    assert (bottom[0].diff == 7.0).all()
    np.testing.assert_allclose(bottom[1].diff, [2.0, 2.0, 2.0])


def test_in_place():
    rng = np.random.default_rng(6)
    x, dy = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    blob = make_blobs([x])
    layer, _ = build_layer(layer_param(f"bias_param {{ {GAUSS} }}", top="x"), blob,
                           num_top=1)
    layer.Forward(blob, blob)
    np.testing.assert_allclose(blob[0].data, reference(x, layer.blobs[0].data, 1))
    blob[0].diff[...] = dy
    layer.Backward(blob, [True], blob)
    np.testing.assert_allclose(blob[0].diff, dy)
    np.testing.assert_allclose(layer.blobs[0].diff, dy.sum(axis=(0, 2)))


def test_shape_mismatch_names_both_shapes():
    bottom = make_blobs([np.zeros((2, 3, 4)), np.zeros((3, 5))])
    with pytest.raises(CaffeliteError, match=r"'bias'.*\(3, 5\).*\(2, 3, 4\)"):
        build_layer(layer_param("", ("x", "b")), bottom)


def test_bias_past_the_end_is_an_error():
    bottom = make_blobs([np.zeros((2, 3, 4)), np.zeros((4, 5))])
    with pytest.raises(CaffeliteError, match=r"'bias'.*\(4, 5\).*\(2, 3, 4\)"):
        build_layer(layer_param("bias_param { axis: 2 }", ("x", "b")), bottom)


@pytest.mark.parametrize("params,field", [("bias_param { num_axes: -2 }", "num_axes"),
                                          ("bias_param { num_axes: 3 }", r"\(2, 3\)"),
                                          ("bias_param { axis: 4 }", "axis")])
def test_bad_params(params, field):
    with pytest.raises(CaffeliteError, match=rf"'bias'.*bias_param.*{field}"):
        build_layer(layer_param(params), make_blobs([np.zeros((2, 3))]))


def test_bottom_reshape_mismatch_is_an_error():
    bottom = make_blobs([np.zeros((2, 3))])
    layer, top = build_layer(layer_param(), bottom)
    bottom[0].reshape(2, 4)
    with pytest.raises(CaffeliteError, match=r"'bias'.*\(3,\).*\(2, 4\)"):
        layer.Forward(bottom, top)


@pytest.mark.parametrize("case", ["bias_learned", "bias_two_bottoms"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
