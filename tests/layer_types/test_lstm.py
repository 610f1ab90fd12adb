"""LSTM layer: forward vs a step-by-step reference, blob layout, gradients, state handling."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite
from caffelite.errors import CaffeliteError
from caffelite.formats.blobproto import array_to_blobproto
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

T, N, D, H = 3, 2, 3, 2


def layer_param(h=H, expose=False, extra=""):
    fill = ('weight_filler { type: "gaussian" std: 0.6 } '
            'bias_filler { type: "gaussian" std: 0.6 }')
    return text_format.Parse(
        f'name: "lstm" type: "LSTM" recurrent_param {{ num_output: {h} '
        f'expose_hidden: {str(expose).lower()} {fill} }} {extra}', caffe_pb2.LayerParameter())


def sig(v):
    return 1 / (1 + np.exp(-v))


def ref_lstm(x, cont, w, xs=None, h0=None, c0=None):
    """Plain per-step LSTM. w = layer blobs in Caffe's order. Returns (h (T,N,H), h_T, c_T)."""
    t_steps, n = x.shape[:2]
    x = x.reshape(t_steps, n, -1)
    w_xc, b_c = w[0], w[1]
    w_hc = w[-1]
    hdim = w_hc.shape[1]
    h = np.zeros((n, hdim)) if h0 is None else h0.reshape(n, hdim)
    c = np.zeros((n, hdim)) if c0 is None else c0.reshape(n, hdim)
    out = []
    for t in range(t_steps):
        k = cont[t][:, None]
        gates = (k * h) @ w_hc.T + x[t] @ w_xc.T + b_c
        if xs is not None:
            gates = gates + xs.reshape(n, -1) @ w[2].T
        i, f, o, g = np.split(gates, 4, axis=1)
        c = k * sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out), h[None], c[None]


def make_bottom(t=T, n=N, d=D, static=False, expose=False, cont=None, seed=0, xshape=None):
    rng = np.random.default_rng(seed)
    xshape = xshape or (t, n, d)
    t, n = xshape[:2]
    x = rng.standard_normal(xshape)
    if cont is None:
        cont = np.ones((t, n))
        cont[0] = 0
        cont[1:2, :1] = 0
    arrays = [x, np.asarray(cont, dtype=float)]
    if static:
        arrays.append(rng.standard_normal((n, 2, 2)))
    if expose:
        arrays += [rng.standard_normal((1, n, H)), rng.standard_normal((1, n, H))]
    return arrays


def blob_arrays(layer):
    return [b.data.copy() for b in layer.blobs]


def test_blob_order_shapes_and_fillers():
    lp = text_format.Parse('name: "l" type: "LSTM" recurrent_param { num_output: 5 '
                           'weight_filler { type: "constant" value: 0.3 } '
                           'bias_filler { type: "constant" value: -0.2 } }',
                           caffe_pb2.LayerParameter())
    bottom = make_blobs(make_bottom(n=3, static=True, xshape=(4, 3, 2, 3)))
    layer, top = build_layer(lp, bottom)
    assert [b.shape for b in layer.blobs] == [(20, 6), (20,), (20, 4), (20, 5)]
    for k in (0, 2, 3):
        assert (layer.blobs[k].data == np.float32(0.3)).all()
    assert (layer.blobs[1].data == np.float32(-0.2)).all()
    assert top[0].shape == (4, 3, 5)
    # Unspecified fillers are constant 0, as everywhere in Caffe.
    lp = text_format.Parse('name: "l" type: "LSTM" recurrent_param { num_output: 2 }',
                           caffe_pb2.LayerParameter())
    layer, _ = build_layer(lp, make_blobs(make_bottom()))
    assert [b.shape for b in layer.blobs] == [(8, 3), (8,), (8, 2)]
    assert all((b.data == 0).all() for b in layer.blobs)


@pytest.mark.parametrize("static,expose", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_forward(static, expose):
    cont = [[0, 0, 1], [1, 0, 1], [1, 1, 0], [0, 1, 1]]
    arrays = make_bottom(t=4, n=3, static=static, expose=expose, cont=cont, seed=5,
                         xshape=(4, 3, 1, 3))
    bottom = make_blobs(arrays)
    layer, top = build_layer(layer_param(expose=expose), bottom, num_top=3 if expose else 1)
    layer.Forward(bottom, top)
    h0c0 = arrays[-2:] if expose else (None, None)
    ref_h, ref_ht, ref_ct = ref_lstm(arrays[0], arrays[1], blob_arrays(layer),
                                     arrays[2] if static else None, *h0c0)
    np.testing.assert_allclose(top[0].data, ref_h, rtol=1e-12, atol=1e-14)
    if expose:
        np.testing.assert_allclose(top[1].data, ref_ht, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(top[2].data, ref_ct, rtol=1e-12, atol=1e-14)


def test_forward_float32():
    arrays = make_bottom(seed=6)
    bottom = make_blobs(arrays, dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    ref_h, _, _ = ref_lstm(arrays[0], arrays[1], [b.data.astype(float) for b in layer.blobs])
    np.testing.assert_allclose(top[0].data, ref_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("static,expose", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_gradients(static, expose):
    cont = [[0, 0], [1, 0], [1, 1]]
    if expose:
        cont[0] = [1, 1]  # start from the given h_0, c_0 so the exposed states are used
    bottom = make_blobs(make_bottom(static=static, expose=expose, cont=cont, seed=7))
    layer, top = build_layer(layer_param(expose=expose), bottom, num_top=3 if expose else 1)
    # cont gets no gradient; as in Caffe 1.0, neither do exposed initial states, and
    # diffs on the exposed final states are ignored (only the output top counts).
    checked = [0] + ([2] if static else [])
    grads = check_gradients(layer, bottom, top, check_bottom=checked, check_top=[0])
    assert all(np.abs(g).max() > 0 for g in grads)


def test_cont_zero_resets_the_state():
    t_steps, n = 5, 2
    cont = np.ones((t_steps, n))
    cont[0] = 0
    cont[2, 0] = 0  # stream 0 starts a new sequence at t = 2
    arrays = make_bottom(t=t_steps, n=n, cont=cont, seed=8)
    bottom = make_blobs(arrays)
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    tail_param = layer_param()
    tail_param.blobs.extend(array_to_blobproto(a) for a in blob_arrays(layer))
    tail_cont = np.ones((t_steps - 2, n))
    tail_cont[0] = 0
    tail_bottom = make_blobs([arrays[0][2:], tail_cont])
    tail, tail_top = build_layer(tail_param, tail_bottom)
    tail.Forward(tail_bottom, tail_top)
    # float32 weights in the BlobProto: compare with a float32-level tolerance.
    np.testing.assert_allclose(top[0].data[2:, 0], tail_top[0].data[:, 0], rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(top[0].data[2:, 1], tail_top[0].data[:, 1], atol=1e-3)


def test_state_carries_over_between_forwards():
    # Caffe's TestForward: the whole sequence at once equals one step per Forward.
    t_steps, n = 4, 3
    cont = np.ones((t_steps, n))
    cont[0] = 0
    arrays = make_bottom(t=t_steps, n=n, cont=cont, seed=9)
    bottom = make_blobs(arrays)
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    step_param = layer_param()
    step_param.blobs.extend(array_to_blobproto(b.data) for b in layer.blobs)
    step_bottom = make_blobs([arrays[0][:1], cont[:1]])
    step, step_top = build_layer(step_param, step_bottom)
    for _ in range(2):  # twice, with a reset in between
        for t in range(t_steps):
            step_bottom[0].data[...] = arrays[0][t:t + 1]
            step_bottom[1].data[...] = cont[t:t + 1]
            step.Forward(step_bottom, step_top)
            np.testing.assert_allclose(step_top[0].data[0], top[0].data[t], rtol=1e-5,
                                       atol=1e-6)
        step.reset()
    # With cont = 1 from the start, the next batch continues from the last state ...
    step_bottom[1].data[...] = 1
    step.Forward(step_bottom, step_top)
    first = step_top[0].data.copy()
    step.Forward(step_bottom, step_top)
    assert not np.allclose(first, step_top[0].data)
    # ... and reset() zeroes it again.
    step.reset()
    step.Forward(step_bottom, step_top)
    np.testing.assert_allclose(step_top[0].data, first)


def test_work_is_linear_in_T(monkeypatch):
    from caffelite.layer_types import lstm as lstm_module
    calls = []
    real = lstm_module.unit_forward

    def counting(xp, c_prev, x, cont):
        calls.append(x.shape)
        return real(xp, c_prev, x, cont)

    monkeypatch.setattr(lstm_module, "unit_forward", counting)
    for t_steps in (1, 4, 16):
        calls.clear()
        bottom = make_blobs(make_bottom(t=t_steps))
        layer, top = build_layer(layer_param(), bottom)
        calls.clear()
        layer.Forward(bottom, top)
        # One (N, 4H) step per time step: the cost per step does not depend on T.
        assert calls == [(N, 4 * H)] * t_steps


def test_propagate_down_and_no_gradient_to_cont():
    bottom = make_blobs(make_bottom(static=True, seed=10))
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    for b in bottom:
        b.diff[...] = 7.0
    layer.Backward(top, [False, False, True], bottom)
    assert (bottom[0].diff == 7.0).all() and (bottom[1].diff == 7.0).all()
    assert not (bottom[2].diff == 7.0).any()
    layer.Backward(top, [True, False, False], bottom)
    assert not (bottom[0].diff == 7.0).any()
    assert not layer.allow_force_backward(1)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(2)
    with pytest.raises(CaffeliteError, match="lstm.*LSTM.*cont"):
        layer.Backward(top, [True, True, False], bottom)


def test_param_diffs_accumulate():
    bottom = make_blobs(make_bottom(static=True, seed=11))
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = np.random.default_rng(12).standard_normal(top[0].shape)
    for b in layer.blobs:
        b.diff[...] = 0
    layer.Backward(top, [True, False, True], bottom)
    once = [b.diff.copy() for b in layer.blobs]
    layer.Backward(top, [True, False, True], bottom)
    for b, d in zip(layer.blobs, once):
        assert np.abs(d).max() > 0
        np.testing.assert_allclose(b.diff, 2 * d, rtol=1e-12)
    # A param whose gradient is not needed is left alone.
    layer.param_propagate_down = [True, False, True, True]
    layer.blobs[1].diff[...] = 5.0
    layer.Backward(top, [False, False, False], bottom)
    assert (layer.blobs[1].diff == 5.0).all()


@pytest.mark.parametrize("arrays,extra,match", [
    ([np.zeros((3, 2, 3)), np.zeros((3, 2))], 'recurrent_param { num_output: 0 }',
     "num_output"),
    ([np.zeros((3,)), np.zeros((3, 2))], None, "at least 2 axes"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 3))], None, "cont.*\\(3, 2\\)"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2, 1))], None, "cont"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((3, 4))], None, "x_static"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((1, 2, 2))],
     'recurrent_param { num_output: 2 expose_hidden: true }', "at least 4 bottom"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((1, 2, 3)), np.zeros((1, 2, 2))],
     'recurrent_param { num_output: 2 expose_hidden: true }', "h_0.*\\(1, 2, 2\\)"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((2, 1)), np.zeros((2, 1)),
      np.zeros((2, 1))], None, "at most 3 bottom"),
])
def test_bad_params_and_shapes(arrays, extra, match):
    lp = text_format.Parse('name: "lstm" type: "LSTM" ' +
                           (extra or 'recurrent_param { num_output: 2 }'),
                           caffe_pb2.LayerParameter())
    exposed = lp.recurrent_param.expose_hidden
    with pytest.raises(CaffeliteError, match="lstm.*LSTM.*" + match):
        build_layer(lp, make_blobs(arrays), num_top=3 if exposed else 1)


def test_reshape_errors():
    bottom = make_blobs(make_bottom())
    layer, top = build_layer(layer_param(), bottom)
    with pytest.raises(CaffeliteError, match="lstm.*time steps changed"):
        layer.Forward(make_blobs(make_bottom(t=4)), top)
    with pytest.raises(CaffeliteError, match="lstm.*weights expect 3"):
        layer.Forward(make_blobs(make_bottom(d=4)), top)
    # N may change between batches; the carried state restarts from zero.
    layer.Forward(make_blobs(make_bottom(n=5)), top)
    assert top[0].shape == (T, 5, H)


def test_preloaded_blobs_are_checked():
    good = layer_param()
    bottom = make_blobs(make_bottom())
    layer, _ = build_layer(good, bottom)
    arrays = blob_arrays(layer)
    lp = layer_param()
    lp.blobs.extend(array_to_blobproto(a) for a in arrays[:2])
    with pytest.raises(CaffeliteError, match="lstm.*2 preloaded blobs, expected 3.*W_hc"):
        build_layer(lp, bottom)
    lp = layer_param()
    lp.blobs.extend(array_to_blobproto(a) for a in [arrays[0], arrays[1], np.zeros((8, 3))])
    with pytest.raises(CaffeliteError, match="lstm.*blob 2 \\(W_hc\\).*\\(8, 3\\).*\\(8, 2\\)"):
        build_layer(lp, bottom)


NET = """
name: "seq"
force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 3 dim: 2 dim: 3 } } }
layer { name: "cont" type: "Input" top: "cont" input_param { shape { dim: 3 dim: 2 } } }
layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
        recurrent_param { num_output: 2 weight_filler { type: "uniform" min: -0.5 max: 0.5 }
                          bias_filler { type: "uniform" min: -0.5 max: 0.5 } } }
layer { name: "target" type: "Input" top: "target" input_param { shape { dim: 3 dim: 2 dim: 2 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "h" bottom: "target" top: "loss" }
"""


def test_in_a_net_with_caffemodel_round_trip(tmp_path):
    param = text_format.Parse(NET, caffe_pb2.NetParameter())
    net = caffelite.Net(param, caffelite.TRAIN)
    assert [b.shape for b in net.params["lstm"]] == [(8, 3), (8,), (8, 2)]
    arrays = make_bottom(seed=13)
    net.blobs["x"].data[...] = arrays[0]
    net.blobs["cont"].data[...] = arrays[1]
    net.blobs["target"].data[...] = 0.1
    net.forward()
    weights = [b.data.astype(float) for b in net.params["lstm"]]
    ref_h, _, _ = ref_lstm(arrays[0], arrays[1], weights)
    np.testing.assert_allclose(net.blobs["h"].data, ref_h, rtol=1e-5, atol=1e-6)
    net.blobs["cont"].diff[...] = 3.0
    net.clear_param_diffs()
    net.backward()
    assert (net.blobs["cont"].diff == 3.0).all()  # force_backward skips cont
    assert np.abs(net.blobs["x"].diff).max() > 0
    assert all(np.abs(b.diff).max() > 0 for b in net.params["lstm"])
    path = tmp_path / "lstm.caffemodel"
    net.save(str(path))
    net2 = caffelite.Net(param, caffelite.TRAIN, weights=str(path))
    for a, b in zip(net.params["lstm"], net2.params["lstm"]):
        np.testing.assert_array_equal(a.data, b.data)
    net2.blobs["x"].data[...] = arrays[0]
    net2.blobs["cont"].data[...] = arrays[1]
    net2.forward()
    np.testing.assert_allclose(net2.blobs["h"].data, net.blobs["h"].data, rtol=1e-6)
