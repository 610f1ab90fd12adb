"""Deconvolution (transposed convolution): the adjoint of Convolution's data path.

bottoms: k >= 1 blobs of one shape (B..., C_in, S_1..S_n) (``axis`` is the channel axis, axes
before it are batch axes). Each bottom i gives top i of shape (B..., num_output, O_1..O_n) with
    O = s (S - 1) + d (k - 1) + 1 - 2p,
the size whose convolution with the same geometry gives back S. All bottoms share the weights.
blobs: W (C_in, num_output/group, k_1..k_n) and, with bias_term, b (num_output,).
Forward is Convolution's backward-data: per group g, cols = W_g^T x_g (rows: output channel of
the group x kernel offset), then col2im scatters the columns into the (zero-padded, cropped)
output and adds b. Backward is Convolution's forward: dx_g = W_g im2col(dy)_g,
dW_g += x_g im2col(dy)_g^T, db += sum of dy over everything but the channel axis.
The bilinear upsampling recipe: bilinear weight_filler, kernel 2f - f%2, stride f,
pad ceil((f-1)/2), group = num_output = C, lr_mult 0.
Params: convolution_param {num_output, bias_term, pad, kernel_size, stride, dilation, pad_h,
pad_w, kernel_h, kernel_w, stride_h, stride_w, group, weight_filler (default constant 0),
bias_filler, axis}; engine and force_nd_im2col do not change the numbers and are ignored.
"""
import math

from ..kernels.im2col import col2im, im2col, kernel_extent
from ..layer import register_layer
from .convolution import COL_BUFFER_ELEMENTS, BaseConvolutionLayer


def deconv_output_shape(spatial, geom):
    return tuple(s * (i - 1) + kernel_extent(k, d) - 2 * p
                 for i, k, p, s, d in zip(spatial, geom.kernel, geom.pad, geom.stride,
                                          geom.dilation))


@register_layer("Deconvolution", v1="DECONVOLUTION")
class DeconvolutionLayer(BaseConvolutionLayer):
    def weight_shape(self):
        # Caffe's "reversed dimensions": the weights are stored as for the convolution that
        # maps the top back to the bottom.
        return (self.channels, self.num_output // self.group) + self.geom.kernel

    def output_spatial(self, shape):
        out = deconv_output_shape(self.spatial, self.geom)
        if any(s <= 0 for s in self.spatial) or any(o <= 0 for o in out):
            g = self.geom
            raise self.error(f"bottom shape {shape} with kernel {g.kernel}, stride {g.stride}, "
                             f"pad {g.pad}, dilation {g.dilation} gives a non-positive output "
                             f"size {out}")
        return out

    # -- shapes used by the GEMMs -----------------------------------------------------------
    def gemm_sizes(self):
        """(G, input channels per group, output channels x taps per group, input positions)."""
        G = self.group
        return (G, self.channels // G, (self.num_output // G) * math.prod(self.geom.kernel),
                math.prod(self.spatial))

    def _weights(self, arr):
        G, cg, ok, _ = self.sizes
        return arr.reshape(G, cg, ok)

    def _chunks(self):
        _, _, ok, L = self.sizes
        step = max(1, COL_BUFFER_ELEMENTS // max(1, ok * self.group * L))
        return [slice(i, min(i + step, self.num)) for i in range(0, self.num, step)]

    def _out_image(self, arr):
        return arr.reshape((self.num, self.num_output) + self.out_spatial)

    def _in_groups(self, arr, c):
        """bottom array rows c -> (G, C_in/G, n*L), the GEMM's right-hand side."""
        G, cg, _, L = self.sizes
        n = c.stop - c.start
        return arr.reshape(self.num, G, cg, L)[c].transpose(1, 2, 0, 3).reshape(G, cg, n * L)

    def _cols_of_top(self, arr, c):
        """im2col of top-shaped array rows c -> (G, og*prod(k), n*L)."""
        g = self.geom
        G, _, ok, L = self.sizes
        cols = im2col(self._out_image(arr)[c], g.kernel, g.pad, g.stride, g.dilation,
                      batch_inside=True)
        return cols.reshape(G, ok, (c.stop - c.start) * L)

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, bottom, top):
        g = self.geom
        G, cg, ok, L = self.sizes
        wt = self._weights(self.blobs[0].data).transpose(0, 2, 1)       # (G, og*kp, cg)
        for b, t in zip(bottom, top):
            y = self._out_image(t.data)
            for c in self._chunks():
                n = c.stop - c.start
                cols = (wt @ self._in_groups(b.data, c)).reshape(
                    (self.num_output,) + g.kernel + (n,) + self.spatial)
                y[c] = col2im(cols, (n, self.num_output) + self.out_spatial, g.kernel, g.pad,
                              g.stride, g.dilation, batch_inside=True)
            if self.bias_term:
                t.data.reshape(self.num, self.num_output, -1)[...] += \
                    self.blobs[1].data.reshape(-1, 1)

    def backward(self, top, propagate_down, bottom):
        G, cg, ok, L = self.sizes
        need_w = self.param_needs_grad(0)
        need_b = self.bias_term and self.param_needs_grad(1)
        w = self._weights(self.blobs[0].data)                           # (G, cg, og*kp)
        for i, (t, b) in enumerate(zip(top, bottom)):
            if need_b:
                self.blobs[1].diff[...] += \
                    t.diff.reshape(self.num, self.num_output, -1).sum(axis=(0, 2))
            if not (need_w or propagate_down[i]):
                continue
            dw = self._weights(self.blobs[0].diff)
            for c in self._chunks():
                n = c.stop - c.start
                dcols = self._cols_of_top(t.diff, c)                    # (G, og*kp, n*L)
                if need_w:
                    dw += self._in_groups(b.data, c) @ dcols.transpose(0, 2, 1)
                if propagate_down[i]:
                    dx = (w @ dcols).reshape(G, cg, n, L).transpose(2, 0, 1, 3)
                    b.diff.reshape(self.num, G, cg, L)[c] = dx
