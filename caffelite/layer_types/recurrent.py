"""RecurrentLayer: what RNN and LSTM share (bottoms, blobs, hidden state, input projections).

Caffe unrolls these layers into a hidden net of T copies of a step; here the step is a loop
over time inside the layer (O(T) Python steps of batched matmuls), with the same learnable
blobs, in the same order and shapes, so caffemodels interoperate.

bottoms: x (T, N, ...), cont (T, N) [, x_static (N, ...)] [, one (1, N, H) initial state per
recurrent blob if expose_hidden]. tops: the output (T, N, H) [, the final states (1, N, H)].
Without expose_hidden, each Forward starts from the state the previous Forward ended with
(zero at first), as Caffe does; cont = 0 at t = 0 makes a batch independent of it.
Params read: recurrent_param {num_output, weight_filler, bias_filler, expose_hidden}.
"""
from ..backend import get_array_module
from ..fillers import fill
from ..layer import Layer


class RecurrentLayer(Layer):
    # Subclasses set: the names of the recurrent state blobs (h_0 [, c_0]), how many blocks
    # of H the input projection has (1 for RNN, 4 for LSTM gates), the names of the input
    # projection's blobs (weight, bias, static weight), and blob_specs().
    recur_names = ()
    gate_blocks = 1
    input_blob_names = ()

    def blob_specs(self):
        """(name, shape, filler) of every learnable blob, in Caffe's order."""
        raise NotImplementedError

    def __init__(self, layer_param):
        super().__init__(layer_param)
        exposed = len(self.recur_names) if layer_param.recurrent_param.expose_hidden else 0
        self.min_bottom = 2 + exposed
        self.max_bottom = 3 + exposed
        self.exact_num_top = 1 + exposed
        self._state = None

    # -- setup --------------------------------------------------------------------------
    def setup(self, bottom, top):
        p = self.layer_param.recurrent_param
        if p.num_output <= 0:
            raise self.error("recurrent_param.num_output must be set and positive")
        self.hidden = p.num_output
        self.expose_hidden = p.expose_hidden
        x, cont = bottom[0], bottom[1]
        if x.num_axes < 2:
            raise self.error(f"bottom[0] (x) must have at least 2 axes (T, N, ...), "
                             f"got shape {x.shape}")
        self.T = x.shape[0]
        if self.T < 1:
            raise self.error(f"bottom[0] (x) has no time steps: shape {x.shape}")
        self._check_cont(x, cont)
        n_exposed = len(self.recur_names) if self.expose_hidden else 0
        self.static_input = len(bottom) > 2 + n_exposed
        self.D = x.count_range(2)
        if self.static_input:
            xs = bottom[2]
            if xs.num_axes < 1 or xs.shape[0] != x.shape[1]:
                raise self.error(f"bottom[2] (x_static) must be (N, ...) with N = {x.shape[1]} "
                                 f"as x {x.shape}; got shape {xs.shape}")
            self.Ds = xs.count_range(1)
        specs = self.blob_specs()
        if self.blobs:
            if len(self.blobs) != len(specs):
                names = ", ".join(name for name, _, _ in specs)
                raise self.error(f"has {len(self.blobs)} preloaded blobs, expected "
                                 f"{len(specs)} ({names})")
            for k, ((name, shape, _), blob) in enumerate(zip(specs, self.blobs)):
                if tuple(blob.shape) != tuple(shape):
                    raise self.error(f"preloaded blob {k} ({name}) has shape {blob.shape}, "
                                     f"expected {tuple(shape)}")
            return
        for name, shape, filler in specs:
            blob = self.make_blob(shape, x)
            fill(blob, filler)
            self.blobs.append(blob)

    def input_specs(self):
        """(name, shape, filler) of the input-projection blobs, in Caffe's order."""
        p = self.layer_param.recurrent_param
        g = self.gate_blocks * self.hidden
        x_name, b_name, s_name = self.input_blob_names
        specs = [(x_name, (g, self.D), p.weight_filler), (b_name, (g,), p.bias_filler)]
        if self.static_input:
            specs.append((s_name, (g, self.Ds), p.weight_filler))
        return specs

    @property
    def rec_offset(self):
        """Index of the first blob after the input projection's."""
        return 3 if self.static_input else 2

    # -- reshape ------------------------------------------------------------------------
    def _check_cont(self, x, cont):
        if cont.num_axes != 2 or cont.shape != (x.shape[0], x.shape[1]):
            raise self.error(f"bottom[1] (cont) must be (T, N) = {(x.shape[0], x.shape[1])} "
                             f"to match x {x.shape}; got shape {cont.shape}")

    def reshape(self, bottom, top):
        x, cont = bottom[0], bottom[1]
        if x.num_axes < 2:
            raise self.error(f"bottom[0] (x) must have at least 2 axes (T, N, ...), "
                             f"got shape {x.shape}")
        if x.shape[0] != self.T:
            raise self.error(f"the number of time steps changed: bottom[0] (x) has shape "
                             f"{x.shape}, the layer was set up with T = {self.T}")
        self._check_cont(x, cont)
        n = x.shape[1]
        if x.count_range(2) != self.D:
            raise self.error(f"bottom[0] (x) shape {x.shape} gives {x.count_range(2)} inputs "
                             f"per step, the weights expect {self.D}")
        if self.static_input:
            xs = bottom[2]
            if xs.num_axes < 1 or xs.shape[0] != n or xs.count_range(1) != self.Ds:
                raise self.error(f"bottom[2] (x_static) must be (N = {n}, ...) with "
                                 f"{self.Ds} values per stream; got shape {xs.shape}")
        state_shape = (1, n, self.hidden)
        if self.expose_hidden:
            first = 2 + int(self.static_input)
            for k, name in enumerate(self.recur_names):
                b = bottom[first + k]
                if tuple(b.shape) != state_shape:
                    raise self.error(f"bottom[{first + k}] ({name}) must have the hidden state "
                                     f"shape {state_shape}; got {b.shape}")
            for k in range(len(self.recur_names)):
                top[1 + k].reshape(state_shape)
        self.N = n
        top[0].reshape((self.T, n, self.hidden))

    # -- helpers for forward / backward -------------------------------------------------
    def initial_state(self, bottom, xp, dtype):
        """The (N, H) states the sequence starts from."""
        n, hdim = self.N, self.hidden
        if self.expose_hidden:
            first = 2 + int(self.static_input)
            return [bottom[first + k].data.reshape(n, hdim)
                    for k in range(len(self.recur_names))]
        state = self._state
        if (state is None or state[0].shape != (n, hdim) or state[0].dtype != dtype
                or get_array_module(state[0]) is not xp):
            state = [xp.zeros((n, hdim), dtype=dtype) for _ in self.recur_names]
        return state

    def finish_forward(self, top, final):
        """Keep the final states for the next Forward; expose them as tops if asked."""
        self._state = [s.copy() for s in final]
        if self.expose_hidden:
            for k, s in enumerate(final):
                top[1 + k].data[...] = s.reshape(top[1 + k].shape)

    def reset(self):
        """Zero the carried-over hidden state (Caffe's RecurrentLayer::Reset)."""
        self._state = None

    def project_inputs(self, bottom):
        """(W_x x + b) as (T, N, G), and W_static x_static as (N, G) or None."""
        x = bottom[0].data.reshape(self.T * self.N, self.D)
        g = self.blobs[0].shape[0]
        pre = (x @ self.blobs[0].data.T + self.blobs[1].data).reshape(self.T, self.N, g)
        static = None
        if self.static_input:
            xs = bottom[2].data.reshape(self.N, self.Ds)
            static = xs @ self.blobs[2].data.T
        return pre, static

    def backward_inputs(self, dpre, propagate_down, bottom):
        """Backward of project_inputs, given d(pre) of shape (T, N, G)."""
        tn = self.T * self.N
        g = dpre.shape[-1]
        d2 = dpre.reshape(tn, g)
        if self.param_needs_grad(0):
            self.blobs[0].diff[...] += d2.T @ bottom[0].data.reshape(tn, self.D)
        if self.param_needs_grad(1):
            self.blobs[1].diff[...] += d2.sum(axis=0)
        if propagate_down[0]:
            bottom[0].diff.reshape(tn, self.D)[...] = d2 @ self.blobs[0].data
        if self.static_input:
            # The static term is added at every step, so its gradient sums over time.
            dsum = dpre.sum(axis=0)
            if self.param_needs_grad(2):
                self.blobs[2].diff[...] += dsum.T @ bottom[2].data.reshape(self.N, self.Ds)
            if propagate_down[2]:
                bottom[2].diff.reshape(self.N, self.Ds)[...] = dsum @ self.blobs[2].data

    def check_propagate_down(self, propagate_down):
        if propagate_down[1]:
            raise self.error("cannot backpropagate to the sequence continuation indicators "
                             "(bottom 1, cont)")

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1
