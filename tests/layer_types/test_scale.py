"""Scale: broadcast shapes, fillers, bias_term, two bottoms, gradients, accumulation,
in-place use, errors, and Caffe's fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="", bottoms=("x",), top="y"):
    bot = " ".join(f'bottom: "{b}"' for b in bottoms)
    return text_format.Parse(f'name: "sc" type: "Scale" {bot} top: "{top}" '
                             f'scale_param {{ {params} }}', caffe_pb2.LayerParameter())


GAUSS = 'filler { type: "gaussian" std: 1 }'
BIAS = 'bias_term: true bias_filler { type: "gaussian" std: 1 }'
SHAPES = [  # (params, scale shape, axis)
    (GAUSS, (3,), 1),
    (f"num_axes: 2 {GAUSS}", (3, 4), 1),
    (f"num_axes: -1 {GAUSS}", (3, 4, 2), 1),
    (f"num_axes: 0 {GAUSS}", (), 0),
    (f"axis: -2 {GAUSS}", (4,), 2),
    (f"axis: 0 num_axes: 2 {GAUSS}", (2, 3), 0),
]


def reference(x, s, axis, b=None):
    out = np.empty_like(np.asarray(x, np.float64))
    for idx in np.ndindex(x.shape):               # y = x * s (+ b), index by index
        key = idx[axis:axis + np.ndim(s)]
        out[idx] = x[idx] * np.asarray(s)[key] + (0 if b is None else np.asarray(b)[key])
    return out


@pytest.mark.parametrize("params,shape,axis", SHAPES)
@pytest.mark.parametrize("bias", [False, True])
def test_learned_scale_forward(params, shape, axis, bias):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(params + (" " + BIAS if bias else "")), bottom)
    assert [b.shape for b in layer.blobs] == [shape] * (1 + bias)
    layer.Forward(bottom, top)
    b = layer.blobs[1].data if bias else None
    np.testing.assert_allclose(top[0].data, reference(x, layer.blobs[0].data, axis, b))


def test_default_fillers():
    layer, _ = build_layer(layer_param("bias_term: true"), make_blobs([np.ones((2, 3))]))
    assert (layer.blobs[0].data == 1).all() and (layer.blobs[1].data == 0).all()


@pytest.mark.parametrize("sshape,params,axis", [((3, 4), "", 1), ((), "", 0),
                                                ((4, 2), "axis: 2", 2),
                                                ((3, 4), BIAS, 1), ((), BIAS, 0)])
def test_two_bottoms_forward(sshape, params, axis):
    rng = np.random.default_rng(1)
    x, s = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal(sshape)
    bottom = make_blobs([x, s])
    layer, top = build_layer(layer_param(params, ("x", "s")), bottom)
    layer.Forward(bottom, top)
    b = None
    if "bias_term" in params:
        assert [bl.shape for bl in layer.blobs] == [sshape]   # bias has bottom[1]'s axes
        b = layer.blobs[0].data
    np.testing.assert_allclose(top[0].data, reference(x, s, axis, b))


@pytest.mark.parametrize("params", [f"{GAUSS} {BIAS}", f"num_axes: 0 {GAUSS} {BIAS}",
                                    f"num_axes: 2 {GAUSS}"])
def test_gradient_learned(params):
    bottom = make_blobs([np.random.default_rng(2).standard_normal((2, 3, 4))])
    layer, top = build_layer(layer_param(params), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("sshape,params", [((3, 4), BIAS), ((), ""), ((3,), ""),
                                           ((2, 3, 4), "axis: 0")])
def test_gradient_two_bottoms(sshape, params):
    rng = np.random.default_rng(3)
    bottom = make_blobs([rng.standard_normal((2, 3, 4)), rng.standard_normal(sshape)])
    layer, top = build_layer(layer_param(params, ("x", "s")), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("params", [f"{GAUSS} {BIAS}", f"num_axes: -1 axis: 0 {GAUSS}"])
def test_param_diffs_accumulate(params):
    rng = np.random.default_rng(4)
    bottom = make_blobs([rng.standard_normal((2, 3, 4))])
    layer, top = build_layer(layer_param(params), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    for b in layer.blobs:
        b.diff[...] = 0
    layer.Backward(top, [True], bottom)
    once = [b.diff.copy() for b in layer.blobs]
    layer.Backward(top, [True], bottom)
    for b, d in zip(layer.blobs, once):
        np.testing.assert_allclose(b.diff, 2 * d)


def test_propagate_down_false_leaves_diffs():
    rng = np.random.default_rng(5)
    bottom = make_blobs([rng.standard_normal((2, 3)), rng.standard_normal((3,))])
    layer, top = build_layer(layer_param("", ("x", "s")), bottom)
    layer.Forward(bottom, top)
    for b in bottom:
        b.diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False, False], bottom)
    assert all((b.diff == 7.0).all() for b in bottom)
    layer.Backward(top, [True, False], bottom)
    assert (bottom[1].diff == 7.0).all()
    np.testing.assert_allclose(bottom[0].diff, np.broadcast_to(bottom[1].data, (2, 3)))


@pytest.mark.parametrize("params", [f"{GAUSS} {BIAS}", f"num_axes: -1 axis: 0 {GAUSS}"])
def test_in_place_matches_out_of_place(params):
    rng = np.random.default_rng(6)
    x, dy = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(params), bottom)
    blob = make_blobs([x])
    inplace, _ = build_layer(layer_param(params, top="x"), blob, num_top=1)
    for src, dst in zip(layer.blobs, inplace.blobs):
        dst.data[...] = src.data
    layer.Forward(bottom, top)
    inplace.Forward(blob, blob)
    np.testing.assert_allclose(blob[0].data, top[0].data)
    top[0].diff[...] = dy
    blob[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    inplace.Backward(blob, [True], blob)
    np.testing.assert_allclose(blob[0].diff, bottom[0].diff)
    for a, b in zip(layer.blobs, inplace.blobs):
        np.testing.assert_allclose(b.diff, a.diff)


def test_shape_mismatch_names_both_shapes():
    bottom = make_blobs([np.zeros((2, 3, 4)), np.zeros((3, 5))])
    with pytest.raises(CaffeliteError, match=r"'sc'.*\(3, 5\).*\(2, 3, 4\)"):
        build_layer(layer_param("", ("x", "s")), bottom)


@pytest.mark.parametrize("params,field", [("num_axes: -2", "num_axes"),
                                          ("num_axes: 3", r"\(2, 3\)"),
                                          ("axis: -3", "axis")])
def test_bad_params(params, field):
    with pytest.raises(CaffeliteError, match=rf"'sc'.*scale_param.*{field}"):
        build_layer(layer_param(params), make_blobs([np.zeros((2, 3))]))


def test_bottom_reshape_mismatch_is_an_error():
    bottom = make_blobs([np.zeros((2, 3))])
    layer, top = build_layer(layer_param(), bottom)
    bottom[0].reshape(2, 4)
    with pytest.raises(CaffeliteError, match=r"'sc'.*\(3,\).*\(2, 4\)"):
        layer.Forward(bottom, top)


@pytest.mark.parametrize("case", ["scale_bias", "scale_scalar", "scale_two_bottoms"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
