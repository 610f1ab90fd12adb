"""LSTMUnit: one LSTM time step, and the step math that the LSTM layer reuses.

Gate pre-activations X hold four blocks of H along the last axis, in Caffe's order
i (input), f (forget), o (output), g (candidate):
    i = sigmoid(X_i)  f = sigmoid(X_f)  o = sigmoid(X_o)  g = tanh(X_g)
    c_t = cont * f * c_{t-1} + i * g
    h_t = o * tanh(c_t)
cont (normally 0 or 1) flushes the previous cell at a sequence start.
"""
from ..backend import get_array_module
from ..layer import Layer, register_layer


def sigmoid(xp, x):
    # The tanh form never overflows exp() for large |x| (as Caffe's Sigmoid layer).
    return 0.5 * xp.tanh(0.5 * x) + 0.5


def unit_forward(xp, c_prev, x, cont):
    """c_prev (N, H), x (N, 4H) pre-activations, cont (N,) -> (acts (N, 4H), c, h).

    acts holds the activated gates i, f, o, g (f without the cont factor)."""
    hdim = c_prev.shape[-1]
    acts = xp.empty_like(x)
    acts[:, :3 * hdim] = sigmoid(xp, x[:, :3 * hdim])
    acts[:, 3 * hdim:] = xp.tanh(x[:, 3 * hdim:])
    i, f, o, g = (acts[:, k * hdim:(k + 1) * hdim] for k in range(4))
    c = (cont[:, None] * f) * c_prev + i * g
    h = o * xp.tanh(c)
    return acts, c, h


def unit_backward(xp, acts, c_prev, c, cont, dc, dh):
    """Gradients of one step: returns (dc_prev (N, H), dx (N, 4H)).

    dc, dh are the gradients arriving at c_t and h_t (dc may be None for zero). The forget
    gate's gradient carries the cont factor, as Caffe's GPU kernel; Caffe's CPU code leaves
    it out, which only differs for a cont that is neither 0 nor 1."""
    hdim = c_prev.shape[-1]
    i, f, o, g = (acts[:, k * hdim:(k + 1) * hdim] for k in range(4))
    tanh_c = xp.tanh(c)
    dc_term = dh * o * (1 - tanh_c * tanh_c)
    if dc is not None:
        dc_term += dc
    cont_dc = cont[:, None] * dc_term
    dx = xp.empty_like(acts)
    dx[:, :hdim] = dc_term * g * i * (1 - i)
    dx[:, hdim:2 * hdim] = cont_dc * c_prev * f * (1 - f)
    dx[:, 2 * hdim:3 * hdim] = dh * tanh_c * o * (1 - o)
    dx[:, 3 * hdim:] = dc_term * i * (1 - g * g)
    return cont_dc * f, dx


@register_layer("LSTMUnit")
class LSTMUnitLayer(Layer):
    """bottoms: c_prev (1, N, H), X (1, N, 4H) gate pre-activations, cont (1, N).
    tops: c (1, N, H), h (1, N, H). No learnable blobs, no params read.
    Backward gives gradients to c_prev and X; cont gets none (requesting it is an error)."""
    exact_num_bottom = 3
    exact_num_top = 2

    def reshape(self, bottom, top):
        c_prev, x, cont = bottom
        shapes = f"c_prev {c_prev.shape}, X {x.shape}, cont {cont.shape}"
        if c_prev.num_axes != 3 or x.num_axes != 3 or cont.num_axes != 2:
            raise self.error(f"bottoms must be c_prev (1, N, H), X (1, N, 4H) and cont (1, N); "
                             f"got {shapes}")
        if c_prev.shape[0] != 1 or x.shape[0] != 1 or cont.shape[0] != 1:
            raise self.error(f"bottoms must hold a single time step (axis 0 of size 1); "
                             f"got {shapes}")
        n, hdim = c_prev.shape[1], c_prev.shape[2]
        if x.shape[1] != n or cont.shape[1] != n:
            raise self.error(f"bottoms disagree on the number of streams N (axis 1); got {shapes}")
        if x.shape[2] != 4 * hdim:
            raise self.error(f"X must have 4 * H = {4 * hdim} gate inputs on axis 2 "
                             f"(H = {hdim} from c_prev); got {shapes}")
        self.num, self.hidden_dim = n, hdim
        top[0].reshape(c_prev.shape)
        top[1].reshape(c_prev.shape)

    def _views(self, bottom):
        n, hdim = self.num, self.hidden_dim
        return (bottom[0].data.reshape(n, hdim), bottom[1].data.reshape(n, 4 * hdim),
                bottom[2].data.reshape(n))

    def forward(self, bottom, top):
        c_prev, x, cont = self._views(bottom)
        xp = get_array_module(x)
        _, c, h = unit_forward(xp, c_prev, x, cont)
        top[0].data[...] = c.reshape(top[0].shape)
        top[1].data[...] = h.reshape(top[1].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            raise self.error("cannot backpropagate to the sequence continuation indicators "
                             "(bottom 2, cont)")
        if not (propagate_down[0] or propagate_down[1]):
            return
        c_prev, x, cont = self._views(bottom)
        xp = get_array_module(x)
        n, hdim = self.num, self.hidden_dim
        # Recomputed from the bottoms (as Caffe's CPU path), so nothing is kept between calls.
        acts, c, _ = unit_forward(xp, c_prev, x, cont)
        dc_prev, dx = unit_backward(xp, acts, c_prev, c, cont, top[0].diff.reshape(n, hdim),
                                    top[1].diff.reshape(n, hdim))
        if propagate_down[0]:
            bottom[0].diff[...] = dc_prev.reshape(bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff[...] = dx.reshape(bottom[1].shape)

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2
