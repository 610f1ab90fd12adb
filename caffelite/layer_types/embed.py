"""Embed: a table lookup, y[..., :] = W[x[...], :] + b."""
from .. import backend
from ..backend import get_array_module
from ..fillers import fill
from ..layer import Layer, register_layer


@register_layer("Embed")
class EmbedLayer(Layer):
    """bottom x: any shape, M = count elements, each an integer index in [0, input_dim).
    top: x.shape + (num_output,).
    blobs: W (input_dim, num_output) — transposed relative to InnerProduct — and
    b (num_output,) if bias_term.
    Backward: dW[x_m, :] += dy_m (repeated indices accumulate), db += sum_m dy_m;
    the indices get no gradient (asking for one is an error, as in Caffe).
    Params: embed_param {num_output, input_dim, bias_term, weight_filler, bias_filler}.
    """
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.embed_param
        if p.num_output == 0:
            raise self.error("embed_param.num_output must be set and positive")
        if p.input_dim == 0:
            raise self.error("embed_param.input_dim must be set and positive")
        self.num_output = p.num_output
        self.input_dim = p.input_dim
        self.bias_term = p.bias_term
        if self.blobs:
            self._check_loaded_blobs()
            return
        self.blobs.append(self.make_blob((self.input_dim, self.num_output), bottom[0]))
        fill(self.blobs[0], p.weight_filler)
        if self.bias_term:
            self.blobs.append(self.make_blob((self.num_output,), bottom[0]))
            fill(self.blobs[1], p.bias_filler)

    def _check_loaded_blobs(self):
        expected = 2 if self.bias_term else 1
        if len(self.blobs) != expected:
            raise self.error(f"has {len(self.blobs)} preloaded blobs, expected {expected} "
                             f"(embed_param.bias_term is {self.bias_term})")
        # Counts, not shapes: V1 caffemodels store these blobs with legacy 4-D shapes.
        want = [self.input_dim * self.num_output, self.num_output][:expected]
        for i, (blob, n) in enumerate(zip(self.blobs, want)):
            if blob.count != n:
                raise self.error(f"preloaded blob {i} has shape {blob.shape}, expected "
                                 f"{n} values (input_dim {self.input_dim}, "
                                 f"num_output {self.num_output})")

    def reshape(self, bottom, top):
        self.M = bottom[0].count
        top[0].reshape(bottom[0].shape + (self.num_output,))

    def _indices(self, bottom):
        """The bottom's values as int indices, after checking they are valid rows."""
        x = bottom.data.reshape(-1)
        xp = get_array_module(x)
        in_range = (x >= 0) & (x < self.input_dim)      # False for NaN too
        # Cast only in-range values, so NaN/inf never reach the float->int conversion.
        idx = xp.where(in_range, x, 0).astype(xp.int64)
        ok = in_range & (idx == x)
        if not bool(ok.all()):
            bad = backend.asnumpy(x)[~backend.asnumpy(ok)]
            raise self.error(f"inputs must be integers in [0, input_dim={self.input_dim}); "
                             f"bottom of shape {bottom.shape} holds {bad[:5].tolist()}")
        return idx

    def _weight(self):
        return self.blobs[0].data.reshape(self.input_dim, self.num_output)

    def forward(self, bottom, top):
        idx = self._indices(bottom[0])
        y = top[0].data.reshape(self.M, self.num_output)
        y[...] = self._weight()[idx]
        if self.bias_term:
            y += self.blobs[1].data.reshape(self.num_output)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise self.error("cannot back-propagate to its input (the indices); "
                             "set propagate_down: false for its bottom")
        dy = top[0].diff.reshape(self.M, self.num_output)
        if self.param_needs_grad(0):
            xp = get_array_module(dy)
            dw = self.blobs[0].diff.reshape(self.input_dim, self.num_output)
            backend.scatter_add(xp, dw, self._indices(bottom[0]), dy)
        if self.bias_term and self.param_needs_grad(1):
            self.blobs[1].diff.reshape(self.num_output)[...] += dy.sum(axis=0)
