"""BatchNorm: training and global-statistics modes against a reference, the running sums,
the forced lr_mult 0 param specs, gradients, in-place use, errors, and Caffe's fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="", phase="TRAIN", top="y"):
    return text_format.Parse(f'name: "bn" type: "BatchNorm" bottom: "x" top: "{top}" '
                             f'phase: {phase} {params}', caffe_pb2.LayerParameter())


def channel_view(x):
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], 1, -1) if x.ndim == 1 else x.reshape(x.shape[0], x.shape[1], -1)


def reference_train(x, eps):
    v = channel_view(x)
    mu = v.mean(axis=(0, 2), keepdims=True)
    var = ((v - mu) ** 2).mean(axis=(0, 2), keepdims=True)
    return ((v - mu) / np.sqrt(var + eps)).reshape(np.shape(x)), mu.ravel(), var.ravel()


def run(lp, x):
    bottom = make_blobs([x])
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    return layer, top, bottom


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (5, 2), (6,), (3, 2, 4)])
def test_training_forward_and_running_sums(shape):
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    lp = layer_param("batch_norm_param { moving_average_fraction: 0.8 eps: 0.001 }")
    layer, top, bottom = run(lp, x1)
    y, mu1, var1 = reference_train(x1, float(np.float32(1e-3)))
    np.testing.assert_allclose(top[0].data, y, rtol=1e-10, atol=1e-12)
    bottom[0].data[...] = x2
    layer.Forward(bottom, top)
    _, mu2, var2 = reference_train(x2, 1e-3)
    m = np.prod(shape) // (1 if len(shape) == 1 else shape[1])
    corr = m / (m - 1)
    f = float(np.float32(0.8))                          # the proto field is a float
    np.testing.assert_allclose(layer.blobs[2].data, [f * 1 + 1])
    np.testing.assert_allclose(layer.blobs[0].data, f * mu1 + mu2, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[1].data, f * corr * var1 + corr * var2,
                               rtol=1e-12)


def test_single_value_per_channel_has_no_bias_correction():
    x = np.array([[1.0, 2.0, 3.0]])                     # m = 1 per channel
    layer, top, _ = run(layer_param(), x)
    np.testing.assert_allclose(top[0].data, 0.0)
    np.testing.assert_allclose(layer.blobs[1].data, 0.0)
    np.testing.assert_allclose(layer.blobs[0].data, x[0])


def test_global_statistics():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 2))
    lp = layer_param("batch_norm_param { use_global_stats: true eps: 0.01 }")
    layer, top, bottom = run(lp, x)
    eps = float(np.float32(0.01))                       # the proto field is a float
    np.testing.assert_allclose(top[0].data, x / np.sqrt(eps))   # b2 == 0: mean = var = 0
    layer.blobs[0].data[...] = [1.0, -2.0]
    layer.blobs[1].data[...] = [4.0, 0.5]
    layer.blobs[2].data[...] = 2.0
    layer.Forward(bottom, top)
    mu, var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    expect = (x - mu[None, :, None]) / np.sqrt(var + eps)[None, :, None]
    np.testing.assert_allclose(top[0].data, expect, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[2].data, [2.0])       # not updated
    top[0].diff[...] = dy = rng.standard_normal(x.shape)
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, dy / np.sqrt(var + eps)[None, :, None])


def test_default_mode_follows_phase():
    assert run(layer_param(phase="TEST"), np.zeros((2, 3)))[0].use_global_stats
    assert not run(layer_param(phase="TRAIN"), np.zeros((2, 3)))[0].use_global_stats
    lp = layer_param("batch_norm_param { use_global_stats: false }", phase="TEST")
    assert not run(lp, np.zeros((2, 3)))[0].use_global_stats


def test_param_specs_forced_to_zero_lr():
    layer, _, _ = run(layer_param(), np.zeros((2, 3)))
    assert [b.shape for b in layer.blobs] == [(3,), (3,), (1,)]
    assert [p.lr_mult for p in layer.layer_param.param] == [0, 0, 0]
    partial = layer_param("param { lr_mult: 0 decay_mult: 0 }")
    layer, _, _ = run(partial, np.zeros((2, 3)))
    assert [p.lr_mult for p in layer.layer_param.param] == [0, 0, 0]
    assert layer.layer_param.param[0].decay_mult == 0


def test_nonzero_lr_mult_is_an_error():
    lp = layer_param("param { lr_mult: 0 } param { lr_mult: 1 }")
    with pytest.raises(CaffeliteError, match="'bn'.*param 1.*lr_mult"):
        run(lp, np.zeros((2, 3)))


def test_net_treats_statistics_as_frozen():
    net_param = text_format.Parse("""
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 4 dim: 2 } } }
        layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }""",
                                  caffe_pb2.NetParameter())
    net = caffe.Net(net_param, caffe.TRAIN)
    assert net.params_lr == [0, 0, 0]
    net.blobs["x"].data[...] = np.arange(8).reshape(4, 2)
    net.forward()
    np.testing.assert_allclose(net.params["bn"][2].data, [1.0])


@pytest.mark.parametrize("shape", [(4, 3, 2), (6, 2)])
def test_gradient_training(shape):
    # The output depends on the batch statistics only, never on the running sums (which
    # change on every Forward), so the blobs are excluded from the check.
    x = np.random.default_rng(2).standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    check_gradients(layer, bottom, top, skip_params=True)


def test_gradient_global():
    x = np.random.default_rng(3).standard_normal((3, 2, 2))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param("batch_norm_param { use_global_stats: true }"),
                             bottom)
    layer.blobs[0].data[...] = [0.3, -0.2]
    layer.blobs[1].data[...] = [1.5, 0.7]
    layer.blobs[2].data[...] = 1.3
    check_gradients(layer, bottom, top, skip_params=True)


@pytest.mark.parametrize("params", ["", "batch_norm_param { use_global_stats: true }"])
def test_in_place_matches_out_of_place(params):
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2))
    layer, top, bottom = run(layer_param(params), x)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    blob = make_blobs([x])
    inplace, _ = build_layer(layer_param(params, top="x"), blob, num_top=1)
    inplace.Forward(blob, blob)
    np.testing.assert_allclose(blob[0].data, top[0].data, rtol=1e-12)
    blob[0].diff[...] = dy
    inplace.Backward(blob, [True], blob)
    np.testing.assert_allclose(blob[0].diff, bottom[0].diff, rtol=1e-10, atol=1e-14)


def test_no_param_diffs_and_propagate_down_false():
    layer, top, bottom = run(layer_param(), np.random.default_rng(5).standard_normal((3, 2)))
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()
    layer.Backward(top, [True], bottom)
    assert all((b.diff == 0).all() for b in layer.blobs)


def test_channel_change_is_an_error():
    layer, top, bottom = run(layer_param(), np.zeros((2, 3)))
    bottom[0].reshape(2, 4)
    with pytest.raises(CaffeliteError, match=r"'bn'.*\(2, 4\).*4 channels.*3"):
        layer.Forward(bottom, top)


def test_scalar_bottom_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'bn'.*\(\)"):
        build_layer(layer_param(), make_blobs([np.float64(1.0)]))


@pytest.mark.parametrize("case", ["batchnorm_test_stats", "batchnorm_train"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
