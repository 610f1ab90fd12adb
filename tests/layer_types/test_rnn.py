"""RNN layer: forward vs a step-by-step reference, blob layout, gradients, state handling."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite
from caffelite.errors import CaffeliteError
from caffelite.formats.blobproto import array_to_blobproto
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

T, N, D, H = 3, 2, 3, 2


def layer_param(h=H, expose=False):
    return text_format.Parse(
        f'name: "rnn" type: "RNN" recurrent_param {{ num_output: {h} '
        f'expose_hidden: {str(expose).lower()} weight_filler {{ type: "gaussian" std: 0.6 }} '
        f'bias_filler {{ type: "gaussian" std: 0.6 }} }}', caffe_pb2.LayerParameter())


def ref_rnn(x, cont, w, xs=None, h0=None):
    """Plain per-step RNN; w = blobs in Caffe's order. Returns (o (T,N,H), h_T (1,N,H))."""
    t_steps, n = x.shape[:2]
    x = x.reshape(t_steps, n, -1)
    w_xh, b_h = w[0], w[1]
    w_hh, w_ho, b_o = w[-3:]
    h = np.zeros((n, w_hh.shape[0])) if h0 is None else h0.reshape(n, -1)
    out = []
    for t in range(t_steps):
        pre = (cont[t][:, None] * h) @ w_hh.T + x[t] @ w_xh.T + b_h
        if xs is not None:
            pre = pre + xs.reshape(n, -1) @ w[2].T
        h = np.tanh(pre)
        out.append(np.tanh(h @ w_ho.T + b_o))
    return np.stack(out), h[None]


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
        arrays.append(rng.standard_normal((n, 4)))
    if expose:
        arrays.append(rng.standard_normal((1, n, H)))
    return arrays


def blob_arrays(layer):
    return [b.data.copy() for b in layer.blobs]


def test_blob_order_shapes_and_fillers():
    lp = text_format.Parse('name: "r" type: "RNN" recurrent_param { num_output: 5 '
                           'weight_filler { type: "constant" value: 0.5 } '
                           'bias_filler { type: "constant" value: -0.25 } }',
                           caffe_pb2.LayerParameter())
    bottom = make_blobs(make_bottom(static=True, xshape=(4, 3, 2, 3)))
    layer, top = build_layer(lp, bottom)
    # W_xh, b_h, W_xh_static, W_hh, W_ho, b_o
    assert [b.shape for b in layer.blobs] == [(5, 6), (5,), (5, 4), (5, 5), (5, 5), (5,)]
    for k in (0, 2, 3, 4):
        assert (layer.blobs[k].data == 0.5).all()
    assert (layer.blobs[1].data == -0.25).all() and (layer.blobs[5].data == -0.25).all()
    assert top[0].shape == (4, 3, 5)
    layer, _ = build_layer(layer_param(), make_blobs(make_bottom()))
    assert [b.shape for b in layer.blobs] == [(2, 3), (2,), (2, 2), (2, 2), (2,)]


@pytest.mark.parametrize("static,expose", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_forward(static, expose):
    cont = [[0, 0, 1], [1, 0, 1], [1, 1, 0], [0, 1, 1]]
    arrays = make_bottom(t=4, n=3, static=static, expose=expose, cont=cont, seed=5,
                         xshape=(4, 3, 3, 1))
    bottom = make_blobs(arrays)
    layer, top = build_layer(layer_param(expose=expose), bottom, num_top=2 if expose else 1)
    layer.Forward(bottom, top)
    ref_o, ref_ht = ref_rnn(arrays[0], arrays[1], blob_arrays(layer),
                            arrays[2] if static else None, arrays[-1] if expose else None)
    np.testing.assert_allclose(top[0].data, ref_o, rtol=1e-12, atol=1e-14)
    if expose:
        np.testing.assert_allclose(top[1].data, ref_ht, rtol=1e-12, atol=1e-14)


def test_forward_float32():
    arrays = make_bottom(seed=6)
    bottom = make_blobs(arrays, dtype=np.float32)
    layer, top = build_layer(layer_param(), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    ref_o, _ = ref_rnn(arrays[0], arrays[1], [b.data.astype(float) for b in layer.blobs])
    np.testing.assert_allclose(top[0].data, ref_o, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("static,expose", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_gradients(static, expose):
    cont = [[0, 0], [1, 0], [1, 1]]
    if expose:
        cont[0] = [1, 1]  # start from the given h_0 so the exposed state is used
    bottom = make_blobs(make_bottom(static=static, expose=expose, cont=cont, seed=7))
    layer, top = build_layer(layer_param(expose=expose), bottom, num_top=2 if expose else 1)
    # cont gets no gradient; as in Caffe 1.0, neither do exposed initial states, and
    # diffs on the exposed final states are ignored (only the output top counts).
    checked = [0] + ([2] if static else [])
    grads = check_gradients(layer, bottom, top, check_bottom=checked, check_top=[0])
    assert all(np.abs(g).max() > 0 for g in grads)


def test_cont_zero_resets_the_state():
    t_steps, n = 5, 2
    cont = np.ones((t_steps, n))
    cont[0] = 0
    cont[3, 1] = 0  # stream 1 starts a new sequence at t = 3
    arrays = make_bottom(t=t_steps, n=n, cont=cont, seed=8)
    bottom = make_blobs(arrays)
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    tail_param = layer_param()
    tail_param.blobs.extend(array_to_blobproto(a) for a in blob_arrays(layer))
    tail_cont = np.zeros((2, n))
    tail_cont[1] = 1
    tail_bottom = make_blobs([arrays[0][3:], tail_cont])
    tail, tail_top = build_layer(tail_param, tail_bottom)
    tail.Forward(tail_bottom, tail_top)
    np.testing.assert_allclose(top[0].data[3:, 1], tail_top[0].data[:, 1], rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(top[0].data[3:, 0], tail_top[0].data[:, 0], atol=1e-3)


def test_state_carries_over_between_forwards():
    t_steps, n = 4, 3
    cont = np.ones((t_steps, n))
    cont[0] = 0
    arrays = make_bottom(t=t_steps, n=n, cont=cont, seed=9)
    bottom = make_blobs(arrays)
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    chunk_param = layer_param()
    chunk_param.blobs.extend(array_to_blobproto(b.data) for b in layer.blobs)
    chunk_bottom = make_blobs([arrays[0][:2], cont[:2]])
    chunk, chunk_top = build_layer(chunk_param, chunk_bottom)
    for t in (0, 2):  # two Forwards of two steps each
        chunk_bottom[0].data[...] = arrays[0][t:t + 2]
        chunk_bottom[1].data[...] = cont[t:t + 2]
        chunk.Forward(chunk_bottom, chunk_top)
        np.testing.assert_allclose(chunk_top[0].data, top[0].data[t:t + 2], rtol=1e-5,
                                   atol=1e-6)


def test_work_is_linear_in_T(monkeypatch):
    from caffelite.layer_types import rnn as rnn_module
    calls = []

    class CountingXp:
        """Stands in for numpy inside the layer; counts the per-step tanh calls."""
        def __getattr__(self, name):
            return getattr(np, name)

        def tanh(self, a, *args, **kwargs):
            calls.append(np.shape(a))
            return np.tanh(a, *args, **kwargs)

    monkeypatch.setattr(rnn_module, "get_array_module", lambda x: CountingXp())
    for t_steps in (1, 4, 16):
        bottom = make_blobs(make_bottom(t=t_steps))
        layer, top = build_layer(layer_param(), bottom)
        calls.clear()
        layer.Forward(bottom, top)
        # One (N, H) step per time step plus one batched output tanh over all T * N rows.
        assert calls == [(N, H)] * t_steps + [(t_steps * N, H)]


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
    assert not layer.allow_force_backward(1)
    with pytest.raises(CaffeliteError, match="rnn.*RNN.*cont"):
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


@pytest.mark.parametrize("arrays,extra,match", [
    ([np.zeros((3, 2, 3)), np.zeros((3, 2))], 'recurrent_param { }', "num_output"),
    ([np.zeros((3, 2, 3)), np.zeros((2, 3))], None, "cont"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((3, 2))], None, "x_static"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((1, 3, 2))],
     'recurrent_param { num_output: 2 expose_hidden: true }', "h_0"),
    ([np.zeros((3, 2, 3)), np.zeros((3, 2)), np.zeros((2, 1)), np.zeros((1, 2, 2)),
      np.zeros((1, 2, 2))], 'recurrent_param { num_output: 2 expose_hidden: true }',
     "at most 4 bottom"),
])
def test_bad_params_and_shapes(arrays, extra, match):
    lp = text_format.Parse('name: "rnn" type: "RNN" ' +
                           (extra or 'recurrent_param { num_output: 2 }'),
                           caffe_pb2.LayerParameter())
    exposed = lp.recurrent_param.expose_hidden
    with pytest.raises(CaffeliteError, match="rnn.*RNN.*" + match):
        build_layer(lp, make_blobs(arrays), num_top=2 if exposed else 1)


def test_wrong_top_count():
    with pytest.raises(CaffeliteError, match="rnn.*RNN.*takes 2 top"):
        build_layer(layer_param(expose=True), make_blobs(make_bottom(expose=True)), num_top=1)


def test_preloaded_blob_shape_is_checked():
    bottom = make_blobs(make_bottom())
    layer, _ = build_layer(layer_param(), bottom)
    arrays = blob_arrays(layer)
    arrays[3] = np.zeros((3, 2))
    lp = layer_param()
    lp.blobs.extend(array_to_blobproto(a) for a in arrays)
    with pytest.raises(CaffeliteError, match="rnn.*blob 3 \\(W_ho\\).*\\(3, 2\\)"):
        build_layer(lp, bottom)


NET = """
name: "encdec"
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 3 dim: 2 dim: 3 } } }
layer { name: "cont" type: "Input" top: "cont" input_param { shape { dim: 3 dim: 2 } } }
layer { name: "h0" type: "Input" top: "h0" input_param { shape { dim: 1 dim: 2 dim: 2 } } }
layer { name: "enc" type: "RNN" bottom: "x" bottom: "cont" bottom: "h0" top: "o" top: "hT"
        recurrent_param { num_output: 2 expose_hidden: true
                          weight_filler { type: "gaussian" std: 0.5 }
                          bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "dec" type: "RNN" bottom: "x" bottom: "cont" bottom: "hT" top: "o2" top: "hT2"
        recurrent_param { num_output: 2 expose_hidden: true
                          weight_filler { type: "gaussian" std: 0.5 }
                          bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "Reduction" bottom: "o2" top: "loss" loss_weight: 1 }
layer { name: "silence" type: "Silence" bottom: "o" bottom: "hT2" }
"""


def test_exposed_hidden_state_chains_in_a_net():
    net = caffelite.Net(text_format.Parse(NET, caffe_pb2.NetParameter()), caffelite.TRAIN)
    arrays = make_bottom(expose=True, cont=np.ones((T, N)), seed=14)
    net.blobs["x"].data[...] = arrays[0]
    net.blobs["cont"].data[...] = arrays[1]
    net.blobs["h0"].data[...] = arrays[2]
    net.forward()
    enc = [b.data.astype(float) for b in net.params["enc"]]
    dec = [b.data.astype(float) for b in net.params["dec"]]
    _, ht = ref_rnn(arrays[0], arrays[1], enc, h0=arrays[2])
    o2, _ = ref_rnn(arrays[0], arrays[1], dec, h0=ht)
    np.testing.assert_allclose(net.blobs["o2"].data, o2, rtol=1e-5, atol=1e-6)
    net.clear_param_diffs()
    net.backward()
    # Caffe 1.0 passes no gradient through exposed states: the decoder leaves h_T's diff
    # alone, so the encoder (whose only used output is h_T) learns nothing.
    assert np.abs(net.blobs["hT"].diff).max() == 0
    assert all(np.abs(b.diff).max() == 0 for b in net.params["enc"])
    assert all(np.abs(b.diff).max() > 0 for b in net.params["dec"][:2])
