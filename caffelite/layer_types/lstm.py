"""LSTM: a long short-term memory layer over T time steps of N independent streams."""
from ..backend import get_array_module
from ..layer import register_layer
from .lstm_unit import unit_backward, unit_forward
from .recurrent import RecurrentLayer


@register_layer("LSTM")
class LSTMLayer(RecurrentLayer):
    """bottoms: x (T, N, ...), cont (T, N) [, x_static (N, ...)] [, h_0, c_0 (1, N, H) if
    recurrent_param.expose_hidden]. tops: h (T, N, H) [, h_T, c_T (1, N, H) if expose_hidden].

    For t = 1..T, with D = count of x from axis 2:
        gates_t = W_hc (cont_t * h_{t-1}) + W_xc x_t + b_c [+ W_xc_static x_static]   (N, 4H)
        c_t, h_t = LSTMUnit(c_{t-1}, gates_t, cont_t)    (gate order i, f, o, g)
    blobs, in Caffe's order: W_xc (4H, D), b_c (4H), [W_xc_static (4H, D_static)], W_hc (4H, H).
    cont gets no gradient. The exposed h_0/c_0 bottoms receive their true gradients and the
    h_T/c_T top diffs flow back (Caffe 1.0 shares only their data, so it drops both).
    Params: recurrent_param {num_output, weight_filler, bias_filler, expose_hidden}."""
    recur_names = ("h_0", "c_0")
    gate_blocks = 4
    input_blob_names = ("W_xc", "b_c", "W_xc_static")

    def blob_specs(self):
        h = self.hidden
        return self.input_specs() + [
            ("W_hc", (4 * h, h), self.layer_param.recurrent_param.weight_filler)]

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        t_steps, n, h = self.T, self.N, self.hidden
        cont = bottom[1].data
        w_hc = self.blobs[self.rec_offset].data
        pre, static = self.project_inputs(bottom)
        h_prev, c0 = self.initial_state(bottom, xp, x.dtype)
        # Kept for backward: activated gates, cells (cs[0] = c_0) and the conted h_{t-1}.
        acts = xp.empty((t_steps, n, 4 * h), dtype=x.dtype)
        cs = xp.empty((t_steps + 1, n, h), dtype=x.dtype)
        hc = xp.empty((t_steps, n, h), dtype=x.dtype)
        cs[0] = c0
        out = top[0].data
        for t in range(t_steps):
            hc[t] = cont[t][:, None] * h_prev
            gates = hc[t] @ w_hc.T + pre[t]
            if static is not None:
                gates += static
            acts[t], cs[t + 1], out[t] = unit_forward(xp, cs[t], gates, cont[t])
            h_prev = out[t]
        self._cache = (acts, cs, hc)
        self.finish_forward(top, [out[t_steps - 1], cs[t_steps]])

    def backward(self, top, propagate_down, bottom):
        self.check_propagate_down(propagate_down)
        acts, cs, hc = self._cache
        xp = get_array_module(acts)
        t_steps, n, h = self.T, self.N, self.hidden
        cont = bottom[1].data
        w_hc = self.blobs[self.rec_offset].data
        dtop = top[0].diff
        # Caffe 1.0 shares only the data of exposed h_T/c_T tops and h_0/c_0 bottoms with
        # its unrolled net: diffs on h_T/c_T are ignored and h_0/c_0 get no gradient.
        dh_next = dc_next = None
        dpre = xp.empty_like(acts)
        for t in range(t_steps - 1, -1, -1):
            dh = dtop[t] if dh_next is None else dtop[t] + dh_next
            dc_next, dpre[t] = unit_backward(xp, acts[t], cs[t], cs[t + 1], cont[t],
                                             dc_next, dh)
            dh_next = cont[t][:, None] * (dpre[t] @ w_hc)
        if self.param_needs_grad(self.rec_offset):
            self.blobs[self.rec_offset].diff[...] += (
                dpre.reshape(t_steps * n, 4 * h).T @ hc.reshape(t_steps * n, h))
        self.backward_inputs(dpre, propagate_down, bottom)
