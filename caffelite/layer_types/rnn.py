"""RNN: a simple (Elman) recurrent layer over T time steps of N independent streams."""
from ..backend import get_array_module
from ..layer import register_layer
from .recurrent import RecurrentLayer


@register_layer("RNN")
class RNNLayer(RecurrentLayer):
    """bottoms: x (T, N, ...), cont (T, N) [, x_static (N, ...)] [, h_0 (1, N, H) if
    recurrent_param.expose_hidden]. tops: o (T, N, H) [, h_T (1, N, H) if expose_hidden].

    For t = 1..T, with D = count of x from axis 2:
        h_t = tanh(W_hh (cont_t * h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static])
        o_t = tanh(W_ho h_t + b_o)
    blobs, in Caffe's order: W_xh (H, D), b_h (H), [W_xh_static (H, D_static)], W_hh (H, H),
    W_ho (H, H), b_o (H). cont gets no gradient. The exposed h_0 bottom receives its true
    gradient and the h_T top diff flows back (Caffe 1.0 drops both).
    Params: recurrent_param {num_output, weight_filler, bias_filler, expose_hidden}."""
    recur_names = ("h_0",)
    gate_blocks = 1
    input_blob_names = ("W_xh", "b_h", "W_xh_static")

    def blob_specs(self):
        p = self.layer_param.recurrent_param
        h = self.hidden
        return self.input_specs() + [("W_hh", (h, h), p.weight_filler),
                                     ("W_ho", (h, h), p.weight_filler),
                                     ("b_o", (h,), p.bias_filler)]

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        t_steps, n, h = self.T, self.N, self.hidden
        cont = bottom[1].data
        k = self.rec_offset
        w_hh, w_ho, b_o = (self.blobs[k + j].data for j in range(3))
        pre, static = self.project_inputs(bottom)
        (h_prev,) = self.initial_state(bottom, xp, x.dtype)
        hs = xp.empty((t_steps, n, h), dtype=x.dtype)
        hc = xp.empty((t_steps, n, h), dtype=x.dtype)
        for t in range(t_steps):
            hc[t] = cont[t][:, None] * h_prev
            # Summed in Caffe's Eltwise order: W_hh h, then W_xh x + b_h, then the static term.
            a = hc[t] @ w_hh.T + pre[t]
            if static is not None:
                a += static
            hs[t] = xp.tanh(a)
            h_prev = hs[t]
        o = top[0].data.reshape(t_steps * n, h)
        xp.tanh(hs.reshape(t_steps * n, h) @ w_ho.T + b_o, out=o)
        self._cache = (hs, hc, o.copy())
        self.finish_forward(top, [hs[t_steps - 1]])

    def backward(self, top, propagate_down, bottom):
        self.check_propagate_down(propagate_down)
        hs, hc, o = self._cache
        xp = get_array_module(hs)
        t_steps, n, h = self.T, self.N, self.hidden
        cont = bottom[1].data
        k = self.rec_offset
        w_hh, w_ho = self.blobs[k].data, self.blobs[k + 1].data
        do = top[0].diff.reshape(t_steps * n, h) * (1 - o * o)
        hs2 = hs.reshape(t_steps * n, h)
        if self.param_needs_grad(k + 1):
            self.blobs[k + 1].diff[...] += do.T @ hs2
        if self.param_needs_grad(k + 2):
            self.blobs[k + 2].diff[...] += do.sum(axis=0)
        dh_out = (do @ w_ho).reshape(t_steps, n, h)
        # Caffe 1.0 shares only the data of an exposed h_T top and h_0 bottom with its
        # unrolled net: a diff on h_T is ignored and h_0 gets no gradient.
        dh_next = None
        da = xp.empty_like(hs)
        for t in range(t_steps - 1, -1, -1):
            dh = dh_out[t] if dh_next is None else dh_out[t] + dh_next
            da[t] = dh * (1 - hs[t] * hs[t])
            dh_next = cont[t][:, None] * (da[t] @ w_hh)
        if self.param_needs_grad(k):
            self.blobs[k].diff[...] += da.reshape(t_steps * n, h).T @ hc.reshape(t_steps * n, h)
        self.backward_inputs(da, propagate_down, bottom)
