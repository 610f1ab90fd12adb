"""Pooling layer: MAX (with argmax top) and AVE, Caffe's output-size and window rules."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

P = caffe_pb2.PoolingParameter
FLT_MAX = float(np.finfo(np.float32).max)


def pool_param(num_top=1, **kw):
    lp = caffe_pb2.LayerParameter(name="pool", type="Pooling", bottom=["x"])
    lp.top.extend(["y", "mask"][:num_top] + [f"t{i}" for i in range(2, num_top)])
    for k, v in kw.items():
        setattr(lp.pooling_param, k, v)
    return lp


def reference_pool(x, pool, k, pad, stride, ceil_mode=True):
    """Caffe's CPU pooling, element by element. Returns (top, argmax or None, divisors)."""
    N, C, H, W = x.shape
    (kh, kw), (ph, pw), (sh, sw) = k, pad, stride

    def size(L, kk, p, s):
        v = (L + 2 * p - kk) / s
        out = int(math.ceil(v) if ceil_mode else math.floor(v)) + 1
        if p and (out - 1) * s >= L + p:
            out -= 1
        return out
    PH, PW = size(H, kh, ph, sh), size(W, kw, pw, sw)
    top = np.full((N, C, PH, PW), -FLT_MAX if pool == P.MAX else 0.0)
    arg = np.full((N, C, PH, PW), -1)
    div = np.zeros((PH, PW))
    for n, c, i, j in np.ndindex(N, C, PH, PW):
        hs, ws = i * sh - ph, j * sw - pw
        if pool == P.MAX:
            for h in range(max(hs, 0), min(hs + kh, H)):
                for w in range(max(ws, 0), min(ws + kw, W)):
                    if x[n, c, h, w] > top[n, c, i, j]:
                        top[n, c, i, j] = x[n, c, h, w]
                        arg[n, c, i, j] = h * W + w
        else:
            he, we = min(hs + kh, H + ph), min(ws + kw, W + pw)
            div[i, j] = (he - hs) * (we - ws)
            s = x[n, c, max(hs, 0):min(he, H), max(ws, 0):min(we, W)].sum()
            top[n, c, i, j] = s / div[i, j] if div[i, j] > 0 else 0.0
    return top, arg, div


def reference_backward(x_shape, dy, pool, k, pad, stride, arg, div):
    N, C, H, W = x_shape
    (kh, kw), (ph, pw), (sh, sw) = k, pad, stride
    dx = np.zeros(x_shape)
    for n, c, i, j in np.ndindex(dy.shape):
        if pool == P.MAX:
            if arg[n, c, i, j] >= 0:
                dx[n, c].flat[arg[n, c, i, j]] += dy[n, c, i, j]
        elif div[i, j] > 0:
            hs, ws = i * sh - ph, j * sw - pw
            dx[n, c, max(hs, 0):min(hs + kh, H), max(ws, 0):min(ws + kw, W)] += \
                dy[n, c, i, j] / div[i, j]
    return dx


CASES = [  # name, shape, params, (kernel, pad, stride) for the reference
    ("ceil_clipped", (2, 3, 8, 6), dict(kernel_size=3, stride=2), ((3, 3), (0, 0), (2, 2))),
    ("pad", (2, 2, 7, 7), dict(kernel_size=3, stride=2, pad=1), ((3, 3), (1, 1), (2, 2))),
    ("pad_drops_last", (1, 2, 5, 5), dict(kernel_size=2, stride=2, pad=1),
     ((2, 2), (1, 1), (2, 2))),
    ("hw", (2, 2, 7, 6), dict(kernel_h=3, kernel_w=2, stride_h=2, stride_w=1, pad_h=1,
                              pad_w=1), ((3, 2), (1, 1), (2, 1))),
    ("overlap", (1, 2, 5, 5), dict(kernel_size=3, stride=1, pad=1), ((3, 3), (1, 1), (1, 1))),
    ("floor", (2, 2, 8, 6), dict(kernel_size=3, stride=2, round_mode=P.FLOOR),
     ((3, 3), (0, 0), (2, 2))),
    ("empty_last_window", (1, 2, 6, 6), dict(kernel_size=1, stride=2),
     ((1, 1), (0, 0), (2, 2))),
    ("kernel_beyond_input", (1, 2, 2, 2), dict(kernel_size=3, stride=2),
     ((3, 3), (0, 0), (2, 2))),
    ("global", (2, 3, 5, 4), dict(global_pooling=True), ((5, 4), (0, 0), (1, 1))),
]


@pytest.mark.parametrize("pool", [P.MAX, P.AVE], ids=["MAX", "AVE"])
@pytest.mark.parametrize("name,shape,kw,geom", CASES, ids=[c[0] for c in CASES])
def test_forward_backward_match_reference(pool, name, shape, kw, geom):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    num_top = 2 if pool == P.MAX else 1
    bottom = make_blobs([x])
    layer, top = build_layer(pool_param(num_top, pool=pool, **kw), bottom)
    layer.Forward(bottom, top)
    ref, arg, div = reference_pool(x, pool, *geom, ceil_mode=kw.get("round_mode") != P.FLOOR)
    assert top[0].shape == ref.shape
    np.testing.assert_allclose(top[0].data, ref, rtol=1e-12, atol=1e-12)
    if pool == P.MAX:
        np.testing.assert_array_equal(top[1].data, arg)
    dy = rng.standard_normal(ref.shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    expected = reference_backward(shape, dy, pool, *geom, arg, div)
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12, atol=1e-12)


def test_output_sizes():
    def out(shape, **kw):
        layer, top = build_layer(pool_param(**kw), make_blobs([np.zeros(shape)]))
        return top[0].shape[2:]
    assert out((1, 1, 8, 6), kernel_size=3, stride=2) == (4, 3)            # ceil
    assert out((1, 1, 8, 6), kernel_size=3, stride=2, round_mode=P.FLOOR) == (3, 2)
    assert out((1, 1, 5, 5), kernel_size=2, stride=2, pad=1) == (3, 3)     # 4 -> 3
    assert out((1, 1, 6, 6), kernel_size=2, stride=2, pad=1) == (4, 4)
    assert out((1, 1, 6, 6), kernel_size=1, stride=2) == (4, 4)            # no pad: kept
    assert out((2, 3, 5, 4), global_pooling=True, pool=P.AVE) == (1, 1)


def test_global_pooling_follows_the_bottom_shape():
    bottom = make_blobs([np.ones((1, 2, 3, 3))])
    layer, top = build_layer(pool_param(global_pooling=True, pool=P.AVE), bottom)
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 6))
    bottom2 = make_blobs([x])
    layer.Forward(bottom2, top)
    np.testing.assert_allclose(top[0].data[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)


def test_max_ties_first_in_row_major_order_wins():
    x = np.random.default_rng(2).integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)
    x[0, 0] = 1.0                                  # a plane of ties
    bottom = make_blobs([x])
    layer, top = build_layer(pool_param(2, kernel_size=3, stride=1, pad=1), bottom)
    layer.Forward(bottom, top)
    ref, arg, div = reference_pool(x, P.MAX, (3, 3), (1, 1), (1, 1))
    np.testing.assert_array_equal(top[0].data, ref)
    np.testing.assert_array_equal(top[1].data, arg)
    assert top[1].data[0, 0, 0, 0] == 0 and top[1].data[0, 0, 3, 3] == 2 * 7 + 2
    dy = np.random.default_rng(3).standard_normal(ref.shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff,
                               reference_backward(x.shape, dy, P.MAX, (3, 3), (1, 1), (1, 1),
                                                  arg, div), rtol=1e-12)


def test_max_ignores_pad_cells_for_negative_inputs():
    x = -1.0 - np.random.default_rng(4).random((1, 1, 4, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(pool_param(kernel_size=3, stride=2, pad=1), bottom)
    layer.Forward(bottom, top)
    assert (top[0].data < -1.0).all()             # a zero pad cell would have won


def test_max_window_without_a_winner_sends_no_gradient():
    # Caffe scans from -FLT_MAX keeping strictly greater values: an all-NaN window keeps
    # -FLT_MAX and mask -1 (Caffe's CPU backward then writes out of bounds; here it sends
    # nothing), and every other window routes its diff as usual
    x = np.random.default_rng(6).standard_normal((1, 2, 4, 4)).astype(np.float32)
    x[0, 1, :2, :2] = np.nan
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(pool_param(2, kernel_size=2, stride=2), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    flt_max = np.finfo(np.float32).max
    assert top[0].data[0, 1, 0, 0] == -flt_max and top[1].data[0, 1, 0, 0] == -1
    ref, arg, div = reference_pool(x[:, :1].astype(np.float64), P.MAX, (2, 2), (0, 0), (2, 2))
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff[0, 1, :2, :2], 0)
    assert bottom[0].diff[0, 1].sum() == 3 and bottom[0].diff[0, 0].sum() == 4
    np.testing.assert_array_equal(top[1].data[:, :1], arg)


def test_float32_forward():
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 7))
    for pool in (P.MAX, P.AVE):
        bottom = make_blobs([x], dtype=np.float32)
        layer, top = build_layer(pool_param(pool=pool, kernel_size=3, stride=2, pad=1),
                                 bottom, dtype=np.float32)
        layer.Forward(bottom, top)
        assert top[0].data.dtype == np.float32
        ref = reference_pool(x.astype(np.float32).astype(np.float64), pool, (3, 3), (1, 1),
                             (2, 2))[0]
        np.testing.assert_allclose(top[0].data, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool,kw", [
    (P.MAX, dict(kernel_size=3, stride=2, pad=1)),
    (P.MAX, dict(kernel_h=2, kernel_w=3, stride=1)),
    (P.AVE, dict(kernel_size=3, stride=2, pad=1)),
    (P.AVE, dict(kernel_size=3, stride=2)),
    (P.AVE, dict(global_pooling=True)),
], ids=["max_pad", "max_hw", "ave_pad", "ave_ceil", "ave_global"])
def test_gradients(pool, kw):
    # distinct values one apart keep the max away from ties under the finite differences
    x = np.random.default_rng(6).permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) * 1.0
    bottom = make_blobs([x])
    num_top = 2 if pool == P.MAX else 1
    layer, top = build_layer(pool_param(num_top, pool=pool, **kw), bottom)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("pool", [P.MAX, P.AVE], ids=["MAX", "AVE"])
def test_propagate_down_false(pool):
    bottom = make_blobs([np.random.default_rng(7).standard_normal((1, 2, 4, 4))])
    layer, top = build_layer(pool_param(pool=pool, kernel_size=2, stride=2), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 5.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 5.0).all()


ERROR_CASES = [
    ("padding is implemented only for average and max pooling", 1,
     dict(pool=P.STOCHASTIC, kernel_size=3, pad=1)),
    ("MAX", 2, dict(pool=P.STOCHASTIC, kernel_size=2)),
    ("kernel_size", 1, dict()),
    ("kernel_h", 1, dict(kernel_h=2)),
    ("kernel_size", 1, dict(kernel_size=2, kernel_h=2, kernel_w=2)),
    ("zero", 1, dict(kernel_size=0)),
    ("global_pooling", 1, dict(global_pooling=True, kernel_size=2)),
    ("global_pooling.*pad", 1, dict(global_pooling=True, pad=1)),
    ("global_pooling.*stride", 1, dict(global_pooling=True, stride=2)),
    ("pad.*smaller than the kernel", 1, dict(kernel_size=2, pad=2)),
    ("pad", 1, dict(kernel_size=3, pad=1, pad_h=1, pad_w=1)),
    ("pad_h", 1, dict(kernel_size=3, pad_h=1)),
    ("stride", 1, dict(kernel_size=3, stride=0)),
    ("stride_h", 1, dict(kernel_size=3, stride_w=2)),
    ("MAX", 2, dict(pool=P.AVE, kernel_size=2)),
    ("at most 2 top", 3, dict(kernel_size=2)),
    (r"\(1, 1, 1, 1\).*too small", 1, dict(kernel_size=3)),
]


@pytest.mark.parametrize("message,num_top,kw", ERROR_CASES)
def test_bad_parameters_raise(message, num_top, kw):
    with pytest.raises(CaffeliteError, match=rf"layer 'pool' \(type Pooling\).*{message}"):
        build_layer(pool_param(num_top, **kw), make_blobs([np.zeros((1, 1, 1, 1))
                                                            if "small" in message
                                                            else np.zeros((1, 1, 6, 6))]))


def test_bottom_must_be_4d():
    with pytest.raises(CaffeliteError, match=r"pool.*4 axes.*\(2, 3, 6\)"):
        build_layer(pool_param(kernel_size=2), make_blobs([np.zeros((2, 3, 6))]))


@pytest.mark.parametrize("case", ["pool_ave_pad", "pool_global_ave", "pool_max_ceil_argmax"])
def test_caffe_fixture(fixtures_dir, case):
    replay_net_case(fixtures_dir / "layers" / case)


# -- STOCHASTIC ---------------------------------------------------------------------------------
def sto_param(phase, **kw):
    lp = pool_param(pool=P.STOCHASTIC, **kw)
    lp.phase = phase
    return lp


def sto_windows(shape, k, stride):
    """Per window (n, c, i, j): the in-image cells (h, w) in row-major order (pad is 0; ceil
    mode can leave the last window clipped or empty)."""
    N, C, H, W = shape
    PH = int(math.ceil((H - k) / stride)) + 1
    PW = int(math.ceil((W - k) / stride)) + 1
    return {(n, c, i, j): [(h, w) for h in range(i * stride, min(i * stride + k, H))
                           for w in range(j * stride, min(j * stride + k, W))]
            for n, c, i, j in np.ndindex(N, C, PH, PW)}, (N, C, PH, PW)


def test_stochastic_train_follows_caffes_scan():
    """u in (0, 1] per window in top order; pick the first cell whose running sum >= u * sum."""
    from caffelite import backend
    x = np.random.default_rng(20).random((2, 2, 7, 6))
    x[0, 0, :3, :3] = 0.0                                   # an all-zero window
    bottom = make_blobs([x])
    layer, top = build_layer(sto_param(caffe_pb2.TRAIN, kernel_size=3, stride=2), bottom)
    backend.set_random_seed(21)
    layer.Forward(bottom, top)
    windows, shape = sto_windows(x.shape, 3, 2)
    assert top[0].shape == shape
    u = 1.0 - np.random.default_rng(21).random(shape)
    expected, idx = np.zeros(shape), np.full(shape, -1)
    for key, cells in windows.items():
        n, c = key[:2]
        thres = u[key] * sum(x[n, c, h, w] for h, w in cells)
        cum = 0.0
        for h, w in cells:
            cum += x[n, c, h, w]
            if cum >= thres:
                expected[key], idx[key] = x[n, c, h, w], h * x.shape[3] + w
                break
    np.testing.assert_array_equal(top[0].data, expected)
    np.testing.assert_array_equal(layer.argmax, idx)
    assert idx[0, 0, 0, 0] == 0                      # all-zero window: its first cell


def test_stochastic_sampling_frequencies_follow_the_values():
    from caffelite import backend
    values = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 0.0])      # zero cells are never drawn
    windows = 200
    x = np.tile(values.reshape(2, 3), (1, windows)).reshape(1, 1, 2, 3 * windows)
    bottom = make_blobs([x])
    layer, top = build_layer(sto_param(caffe_pb2.TRAIN, kernel_h=2, kernel_w=3, stride_h=2,
                                       stride_w=3), bottom)
    backend.set_random_seed(22)
    counts = np.zeros(6)
    draws = 50
    for _ in range(draws):
        layer.Forward(bottom, top)
        local = layer.argmax[0, 0, 0]                   # h * W + w in the whole plane
        h, w = local // x.shape[3], local % x.shape[3]
        np.add.at(counts, h * 3 + w % 3, 1)
        np.testing.assert_array_equal(top[0].data[0, 0, 0], values[h * 3 + w % 3])
    n = draws * windows
    p = values / values.sum()
    assert counts[0] == 0 and counts[5] == 0
    # within 5 binomial standard deviations
    assert np.all(np.abs(counts - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9), counts


def test_stochastic_backward_routes_to_the_sampled_cells():
    from caffelite import backend
    x = np.random.default_rng(23).random((2, 2, 5, 5)) + 0.1
    bottom = make_blobs([x])
    layer, top = build_layer(sto_param(caffe_pb2.TRAIN, kernel_size=3, stride=1), bottom)
    backend.set_random_seed(24)
    layer.Forward(bottom, top)
    dy = np.random.default_rng(25).standard_normal(top[0].shape)
    top[0].diff[...] = dy
    bottom[0].diff[...] = 9.0
    layer.Backward(top, [True], bottom)
    expected = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(dy.shape):        # overlapping windows accumulate
        expected[n, c].flat[layer.argmax[n, c, i, j]] += dy[n, c, i, j]
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12)


def test_stochastic_train_gradient():
    x = np.random.default_rng(26).random((1, 2, 4, 4)) + 0.5
    bottom = make_blobs([x])
    layer, top = build_layer(sto_param(caffe_pb2.TRAIN, kernel_size=2, stride=2), bottom)
    check_gradients(layer, bottom, top)   # the checker reseeds: the same cells every time


def test_stochastic_test_phase_is_sum_of_squares_over_sum():
    x = np.random.default_rng(27).random((2, 2, 7, 6))
    x[1, 1, :3, :3] = 0.0
    bottom = make_blobs([x])
    layer, top = build_layer(sto_param(caffe_pb2.TEST, kernel_size=3, stride=2), bottom)
    layer.Forward(bottom, top)
    windows, shape = sto_windows(x.shape, 3, 2)
    expected = np.zeros(shape)
    for key, cells in windows.items():
        v = np.array([x[key[0], key[1], h, w] for h, w in cells])
        expected[key] = (v * v).sum() / v.sum() if v.sum() else 0.0
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    assert top[0].data[1, 1, 0, 0] == 0.0
    top[0].diff[...] = 1.0
    layer.Backward(top, [False], bottom)            # nothing asked: fine
    with pytest.raises(CaffeliteError, match=r"pool.*STOCHASTIC.*no backward.*TEST"):
        layer.Backward(top, [True], bottom)


@pytest.mark.parametrize("phase", [caffe_pb2.TRAIN, caffe_pb2.TEST], ids=["TRAIN", "TEST"])
def test_stochastic_empty_windows_give_zero(phase):
    x = np.random.default_rng(28).random((1, 1, 5, 5)) + 0.5
    bottom = make_blobs([x])
    layer, top = build_layer(sto_param(phase, kernel_size=1, stride=3), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (1, 1, 3, 3)             # ceil mode, no pad: the last row is empty
    np.testing.assert_array_equal(top[0].data[0, 0, 2], 0.0)
    np.testing.assert_allclose(top[0].data[0, 0, :2, :2], x[0, 0, ::3, ::3], rtol=1e-12)
    if phase == caffe_pb2.TRAIN:
        top[0].diff[...] = 1.0
        layer.Backward(top, [True], bottom)
        assert bottom[0].diff.sum() == 4.0


def test_stochastic_global_and_float32():
    from caffelite import backend
    x = np.random.default_rng(29).random((2, 3, 4, 5)) + 0.1
    for phase in (caffe_pb2.TRAIN, caffe_pb2.TEST):
        bottom = make_blobs([x], dtype=np.float32)
        layer, top = build_layer(sto_param(phase, global_pooling=True), bottom,
                                 dtype=np.float32)
        backend.set_random_seed(30)
        layer.Forward(bottom, top)
        assert top[0].shape == (2, 3, 1, 1) and top[0].data.dtype == np.float32
        x32 = x.astype(np.float32)
        if phase == caffe_pb2.TRAIN:
            flat = x32.reshape(6, 20)
            picked = flat[np.arange(6), layer.argmax.reshape(6)]
            np.testing.assert_array_equal(top[0].data.reshape(6), picked)
        else:
            expected = (x32.astype(np.float64) ** 2).sum(axis=(2, 3)) / x32.sum(axis=(2, 3))
            np.testing.assert_allclose(top[0].data[..., 0, 0], expected, rtol=1e-5)


NET_WITH_POOL = '''
name: "p" force_backward: {force}
layer {{ name: "x" type: "Input" top: "x" input_param {{ shape {{ dim: 2 dim: 3 dim: 9 dim: 9 }} }} }}
layer {{ name: "pool" type: "Pooling" bottom: "x" top: "y"
        pooling_param {{ pool: MAX kernel_size: 3 stride: 2 pad: 1 }} }}
'''


def _pool_net(force):
    import caffelite as caffe
    param = text_format.Parse(NET_WITH_POOL.format(force=force), caffe_pb2.NetParameter())
    net = caffe.Net(param, caffe.TEST)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    x[0, 0, :3, :3] = 1.0                        # ties: the first cell must win
    net.blobs["x"].data[...] = x
    net.forward()
    return net


def test_max_pool_skips_argmax_where_the_net_runs_no_backward():
    plain, forced = _pool_net("false"), _pool_net("true")
    assert not plain.layers[1].backward_expected and forced.layers[1].backward_expected
    assert np.array_equal(plain.blobs["y"].data, forced.blobs["y"].data)
    forced.blobs["y"].diff[...] = 1
    forced.backward()
    assert forced.blobs["x"].diff.sum() == forced.blobs["y"].data.size
    # the net skips the layer; calling its Backward by hand says why it cannot run
    layer = plain.layers[1]
    with pytest.raises(CaffeliteError, match="argmax"):
        layer.Backward([plain.blobs["y"]], [True], [plain.blobs["x"]])
