"""LRN: both norm regions against loop references (WITHIN_CHANNEL rebuilt from Caffe's
Power -> AVE pool -> Power -> Eltwise chain), gradients, in-place use, errors, fixtures."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(params="", top="y"):
    return text_format.Parse(f'name: "norm" type: "LRN" bottom: "x" top: "{top}" '
                             f'lrn_param {{ {params} }}', caffe_pb2.LayerParameter())


def f32(v):
    return float(np.float32(v))        # proto float fields hold float32 values


def reference_across(x, n, alpha, beta, k):
    N, C, H, W = x.shape
    y = np.empty_like(x)
    for c in range(C):
        lo, hi = max(c - (n - 1) // 2, 0), min(c + (n - 1) // 2, C - 1)
        scale = k + alpha / n * (x[:, lo:hi + 1] ** 2).sum(axis=1)
        y[:, c] = x[:, c] * scale ** -beta
    return y


def reference_within(x, n, alpha, beta):
    """Caffe's sublayers: squares, AVE pooling (kernel n, pad p, stride 1, its divisor rule),
    then (1 + alpha * avg)^-beta times x."""
    N, C, H, W = x.shape
    p = (n - 1) // 2
    avg = np.empty_like(x)
    for h in range(H):
        for w in range(W):
            hs, ws = h - p, w - p
            he, we = min(hs + n, H + p), min(ws + n, W + p)
            divisor = (he - hs) * (we - ws)
            window = x[:, :, max(hs, 0):min(he, H), max(ws, 0):min(we, W)] ** 2
            avg[:, :, h, w] = window.sum(axis=(2, 3)) / divisor
    return x * (1 + alpha * avg) ** -beta


@pytest.mark.parametrize("shape,n,alpha,beta,k", [((2, 7, 3, 2), 5, 0.2, 0.75, 2.0),
                                                  ((1, 3, 2, 2), 3, 1.0, 0.5, 1.0),
                                                  ((2, 2, 2, 1), 5, 0.5, 0.75, 1.5),
                                                  ((1, 4, 1, 1), 1, 0.3, 1.0, 0.5)])
def test_across_channels_forward(shape, n, alpha, beta, k):
    x = np.random.default_rng(0).standard_normal(shape) * 2
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(f"local_size: {n} alpha: {alpha} beta: {beta} "
                                         f"k: {k}"), bottom)
    layer.Forward(bottom, top)
    expect = reference_across(x, n, f32(alpha), f32(beta), f32(k))
    np.testing.assert_allclose(top[0].data, expect, rtol=1e-12)


@pytest.mark.parametrize("shape,n,alpha,beta", [((2, 3, 6, 5), 3, 0.6, 0.75),
                                                ((1, 2, 4, 7), 5, 1.0, 0.75),
                                                ((1, 1, 2, 3), 5, 2.0, 0.5)])
def test_within_channel_forward(shape, n, alpha, beta):
    x = np.random.default_rng(1).standard_normal(shape) * 2
    bottom = make_blobs([x])
    lp = layer_param(f"local_size: {n} alpha: {alpha} beta: {beta} k: 7 "
                     f"norm_region: WITHIN_CHANNEL")
    layer, top = build_layer(lp, bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference_within(x, n, f32(alpha), f32(beta)),
                               rtol=1e-12)


@pytest.mark.parametrize("params,shape", [
    ("local_size: 3 alpha: 0.8 beta: 0.75 k: 1.5", (2, 5, 3, 2)),
    ("local_size: 5 alpha: 2.0 beta: 0.6 k: 1.0", (1, 4, 2, 3)),
    ("local_size: 3 alpha: 1.5 beta: 0.75 norm_region: WITHIN_CHANNEL", (1, 2, 5, 4)),
    ("local_size: 5 alpha: 3.0 beta: 0.5 norm_region: WITHIN_CHANNEL", (2, 1, 3, 4))])
def test_gradient(params, shape):
    bottom = make_blobs([np.random.default_rng(2).standard_normal(shape)])
    layer, top = build_layer(layer_param(params), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_in_place_matches_out_of_place(region):
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((2, 4, 3, 3))
    params = f"local_size: 3 alpha: 0.7 norm_region: {region}"
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(params), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    blob = make_blobs([x])
    inplace, _ = build_layer(layer_param(params, top="x"), blob, num_top=1)
    inplace.Forward(blob, blob)
    np.testing.assert_allclose(blob[0].data, top[0].data)
    blob[0].diff[...] = dy
    inplace.Backward(blob, [True], blob)
    np.testing.assert_allclose(blob[0].diff, bottom[0].diff, rtol=1e-12)


def test_float32():
    x = np.random.default_rng(4).standard_normal((2, 5, 3, 3)).astype(np.float32)
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(layer_param("alpha: 0.5"), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, reference_across(x.astype(float), 5, 0.5, 0.75, 1),
                               rtol=1e-5)


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([np.random.default_rng(5).standard_normal((1, 3, 2, 2))])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("size", [4, 0])
def test_even_local_size_is_an_error(size):
    with pytest.raises(CaffeliteError, match=f"'norm'.*local_size.*odd.*{size}"):
        build_layer(layer_param(f"local_size: {size}"), make_blobs([np.zeros((1, 3, 2, 2))]))


def test_bottom_must_be_4d():
    with pytest.raises(CaffeliteError, match=r"'norm'.*4 axes.*\(2, 3, 4\)"):
        build_layer(layer_param(), make_blobs([np.zeros((2, 3, 4))]))


@pytest.mark.parametrize("case", ["lrn_across", "lrn_within"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)
