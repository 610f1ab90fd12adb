"""SPP: per-level geometry, flatten + concat layout, summed backward, pyramid_height 1."""
import math

import numpy as np
import pytest

from caffelite import backend
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

S = caffe_pb2.SPPParameter


def spp_param(height, pool=S.MAX, phase=caffe_pb2.TEST):
    lp = caffe_pb2.LayerParameter(name="spp", type="SPP", bottom=["x"], top=["y"], phase=phase)
    if height is not None:
        lp.spp_param.pyramid_height = height
    lp.spp_param.pool = pool
    return lp


def reference_level(x, level, pool):
    """One level pooled element by element with Caffe's pooling rules; returns
    (top (N, C, PH, PW), backward function dy -> dx)."""
    N, C, H, W = x.shape
    bins = 2 ** level
    k = [math.ceil(H / bins), math.ceil(W / bins)]
    p = [(k[0] * bins - H + 1) // 2, (k[1] * bins - W + 1) // 2]

    def size(L, kk, pp):
        out = math.ceil((L + 2 * pp - kk) / kk) + 1
        return out - 1 if pp and (out - 1) * kk >= L + pp else out
    PH, PW = size(H, k[0], p[0]), size(W, k[1], p[1])
    y = np.zeros((N, C, PH, PW))
    picks = {}
    for n, c, i, j in np.ndindex(N, C, PH, PW):
        hs, ws = i * k[0] - p[0], j * k[1] - p[1]
        h0, h1, w0, w1 = max(hs, 0), min(hs + k[0], H), max(ws, 0), min(ws + k[1], W)
        win = x[n, c, h0:h1, w0:w1]
        if pool == S.MAX:
            a = np.unravel_index(np.argmax(win), win.shape)
            y[n, c, i, j] = win[a]
            picks[n, c, i, j] = [((h0 + a[0], w0 + a[1]), 1.0)]
        else:
            div = (min(hs + k[0], H + p[0]) - hs) * (min(ws + k[1], W + p[1]) - ws)
            y[n, c, i, j] = win.sum() / div
            picks[n, c, i, j] = [((h, w), 1.0 / div) for h in range(h0, h1)
                                 for w in range(w0, w1)]

    def backward(dy):
        dx = np.zeros(x.shape)
        for (n, c, i, j), cells in picks.items():
            for (h, w), s in cells:
                dx[n, c, h, w] += s * dy[n, c, i, j]
        return dx
    return y, backward


CASES = [  # shape, pyramid_height
    ((2, 2, 7, 9), 2),
    ((1, 3, 9, 6), 3),
    ((2, 2, 8, 10), 3),
    ((2, 3, 4, 5), 1),
]


@pytest.mark.parametrize("pool", [S.MAX, S.AVE], ids=["MAX", "AVE"])
@pytest.mark.parametrize("shape,height", CASES)
def test_forward_backward_match_reference(pool, shape, height):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(spp_param(height, pool), bottom)
    layer.Forward(bottom, top)
    levels = [reference_level(x, level, pool) for level in range(height)]
    N = shape[0]
    if height == 1:
        expected = levels[0][0]
        assert expected.shape == (N, shape[1], 1, 1)   # stays 4-D
    else:
        expected = np.concatenate([y.reshape(N, -1) for y, _ in levels], axis=1)
        assert expected.shape == (N, shape[1] * sum(4 ** level for level in range(height)))
    assert top[0].shape == expected.shape
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(expected.shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    dx, start = np.zeros(shape), 0
    for y, back in levels:
        dx += back(dy[:, start:start + y[0].size].reshape(y.shape) if height > 1 else dy)
        start += y[0].size
    np.testing.assert_allclose(bottom[0].diff, dx, rtol=1e-12, atol=1e-12)


def test_level_geometry_covers_the_image():
    from caffelite.layer_types.spp import level_geometry
    # H = 7, 2 bins: kernel 4, pad (8 - 7 + 1) // 2 = 1; 4 bins: kernel 2, pad 1
    assert level_geometry(1, 7, 9) == ((4, 5), (1, 1))
    assert level_geometry(2, 7, 9) == ((2, 3), (1, 2))
    assert level_geometry(0, 7, 9) == ((7, 9), (0, 0))


def test_follows_a_new_bottom_shape():
    layer, top = build_layer(spp_param(2), make_blobs([np.zeros((1, 2, 4, 4))]))
    x = np.random.default_rng(1).standard_normal((3, 2, 9, 7))
    bottom = make_blobs([x])
    layer.Forward(bottom, top)
    expected = np.concatenate([reference_level(x, lv, S.MAX)[0].reshape(3, -1)
                               for lv in range(2)], axis=1)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


@pytest.mark.parametrize("pool,height", [(S.MAX, 2), (S.AVE, 3), (S.MAX, 1)])
def test_gradients(pool, height):
    # distinct values one apart keep the max away from ties under the finite differences
    x = np.random.default_rng(2).permutation(2 * 6 * 7).reshape(1, 2, 6, 7) * 1.0
    bottom = make_blobs([x])
    layer, top = build_layer(spp_param(height, pool), bottom)
    check_gradients(layer, bottom, top)


def test_propagate_down_false():
    bottom = make_blobs([np.random.default_rng(3).standard_normal((1, 2, 4, 4))])
    layer, top = build_layer(spp_param(2), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 5.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 5.0).all()


def test_float32():
    x = np.random.default_rng(4).standard_normal((2, 2, 7, 9))
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(spp_param(2, S.AVE), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    x32 = x.astype(np.float32).astype(np.float64)
    expected = np.concatenate([reference_level(x32, lv, S.AVE)[0].reshape(2, -1)
                               for lv in range(2)], axis=1)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-6, atol=1e-6)


def test_stochastic_levels_sample_even_in_test_phase():
    """Caffe builds the inner Pooling layers from a fresh LayerParameter, whose phase is TRAIN,
    so SPP's STOCHASTIC levels sample whatever the net's phase."""
    x = np.random.default_rng(5).random((1, 2, 4, 4)) + 0.5
    bottom = make_blobs([x])
    layer, top = build_layer(spp_param(2, S.STOCHASTIC, phase=caffe_pb2.TEST), bottom)
    backend.set_random_seed(3)
    layer.Forward(bottom, top)
    values = set(x.ravel().tolist())
    assert all(v in values for v in top[0].data.ravel().tolist())
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)       # a sampled cell per window: a backward exists
    assert bottom[0].diff.sum() == pytest.approx(top[0].count)


ERROR_CASES = [
    ("pyramid_height must be set", None, (1, 2, 4, 4)),
    ("pyramid_height must be set", 0, (1, 2, 4, 4)),
    (r"4 axes.*\(2, 3, 4\)", 2, (2, 3, 4)),
    # H = 5 at 4 bins: kernel 2, pad 2, and pooling needs pad < kernel
    (r"pyramid level 2 \(4 bins per side\).*\(1, 1, 5, 8\).*pad", 3, (1, 1, 5, 8)),
]


@pytest.mark.parametrize("message,height,shape", ERROR_CASES)
def test_bad_parameters_raise(message, height, shape):
    with pytest.raises(CaffeliteError, match=rf"layer 'spp' \(type SPP\).*{message}"):
        build_layer(spp_param(height), make_blobs([np.zeros(shape)]))


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "spp_max")
