"""Convolution: y = W * x + b, cross-correlation over N spatial axes, via im2col + GEMM.

bottoms: k >= 1 blobs of one shape (B..., C_in, S_1..S_n), where ``axis`` is the channel axis,
the axes before it are batch axes and the n axes after it are spatial. Each bottom i gives
top i of shape (B..., num_output, O_1..O_n), O = floor((S + 2p - (d(k-1)+1)) / s) + 1, with
zero padding. All bottoms share the weights.
blobs: W (num_output, C_in/group, k_1..k_n) and, with bias_term, b (num_output,).
Output channel o of group g = o // (num_output/group) sees input channels
[g*C_in/group, (g+1)*C_in/group) only.
Params: convolution_param {num_output, bias_term, pad, kernel_size, stride, dilation, pad_h,
pad_w, kernel_h, kernel_w, stride_h, stride_w, group, weight_filler (default constant 0),
bias_filler, axis}. engine and force_nd_im2col do not change the numbers and are ignored.
"""
import math

from ..backend import get_array_module
from ..fillers import fill
from ..kernels import parallel
from ..kernels.im2col import col2im, im2col, kernel_extent
from ..kernels.workspace import scratch
from ..layer import Layer, register_layer
from .conv_geometry import parse_conv_geometry
from .relu import relu_flat

# Columns for a whole batch can be large (C*prod(k) times the input); the batch is processed
# in chunks whose column buffer stays under this many elements.
COL_BUFFER_ELEMENTS = 1 << 23
# The one-GEMM-per-image path takes fewer images at a time, so each chunk's columns are still
# in cache when its GEMMs read them (ResNet-50 half width, batch 16: 4% faster than 1 << 23).
PER_IMAGE_COL_ELEMENTS = 1 << 20
# Forward runs one GEMM per image when an image has at least this many output positions.
PER_IMAGE_MIN_POSITIONS = 512
# Small-batch GEMMs use the batch_last column layout up to this output width (see _layout).
BATCH_LAST_MAX_WIDTH = 16


def _times_weights_t(w, dy, out):
    """out = w^T dy per group: w (G, og, ck), dy (..., G, og, cols) -> (..., G, ck, cols).
    With one output channel per group (depthwise convolution) the product has K = 1: an
    outer product, which a broadcast multiply computes with the same roundings several
    times faster than a stack of GEMMs."""
    xp = get_array_module(dy)
    wt = w.transpose(0, 2, 1)
    if w.shape[1] == 1:
        parallel.ufunc(xp.multiply, wt, dy, out=out)
    else:
        xp.matmul(wt, dy, out=out)


class BaseConvolutionLayer(Layer):
    """Setup shared by Convolution and Deconvolution (Caffe's BaseConvolutionLayer):
    geometry, group checks, and the weight and bias blobs (``weight_shape`` differs)."""
    min_bottom = 1
    min_top = 1
    equal_num_bottom_top = True

    def weight_shape(self):
        raise NotImplementedError

    def setup(self, bottom, top):
        p = self.layer_param.convolution_param
        self.geom = parse_conv_geometry(self, bottom[0])
        self.channels = bottom[0].shape[self.geom.channel_axis]
        self.num_output = int(p.num_output)
        self.group = int(p.group)
        self.bias_term = p.bias_term
        if self.num_output <= 0:
            raise self.error("convolution_param.num_output must be set and positive")
        if self.group <= 0:
            raise self.error("convolution_param.group must be positive")
        if self.channels % self.group or self.num_output % self.group:
            raise self.error(f"convolution_param.group {self.group} must divide both the input "
                             f"channels {self.channels} (bottom shape {bottom[0].shape}) and "
                             f"num_output {self.num_output}")
        w_shape = self.weight_shape()
        if self.blobs:
            expected = [w_shape] + ([(self.num_output,)] if self.bias_term else [])
            if len(self.blobs) != len(expected):
                raise self.error(f"has {len(self.blobs)} preloaded blobs, expected "
                                 f"{len(expected)} (bias_term: {self.bias_term})")
            for what, b, shape in zip(("weight", "bias"), self.blobs, expected):
                if tuple(b.shape) != shape:
                    raise self.error(f"incorrect {what} shape: expected {shape}, "
                                     f"preloaded blob has {tuple(b.shape)}")
            return
        self.blobs.append(self.make_blob(w_shape, bottom[0]))
        fill(self.blobs[0], p.weight_filler)
        if self.bias_term:
            self.blobs.append(self.make_blob((self.num_output,), bottom[0]))
            fill(self.blobs[1], p.bias_filler)


    def reshape(self, bottom, top):
        # Runs before every forward: nothing to redo while the shapes stay as they were.
        if getattr(self, "_shapes_seen", None) == [b.shape for b in bottom] + \
                [t.shape for t in top]:
            return
        shape = self.check_bottoms(bottom)
        axis = self.geom.channel_axis
        self.spatial = shape[axis + 1:]
        self.out_spatial = self.output_spatial(shape)
        self.num = bottom[0].count_range(0, axis)
        for t in top:
            t.reshape(shape[:axis] + (self.num_output,) + self.out_spatial)
        self.sizes = self.gemm_sizes()
        self._shapes_seen = [b.shape for b in bottom] + [t.shape for t in top]

    def output_spatial(self, shape):
        """The top's spatial shape for a bottom of ``shape`` (checked)."""
        raise NotImplementedError

    def gemm_sizes(self):
        """(groups, GEMM rows per group, reduction length per group, positions)."""
        raise NotImplementedError

    def check_bottoms(self, bottom):
        """Every bottom keeps the set-up axes and channels and has bottom[0]'s shape."""
        g = self.geom
        shape = tuple(bottom[0].shape)
        axis = g.channel_axis
        if len(shape) != axis + 1 + g.num_spatial:
            raise self.error(f"bottom num_axes may not change: bottom shape {shape}, set up "
                             f"with {axis + 1 + g.num_spatial} axes")
        if shape[axis] != self.channels:
            raise self.error(f"input size incompatible with {self.type.lower()} kernel: bottom "
                             f"shape {shape} has {shape[axis]} channels on axis {axis}, the "
                             f"weights expect {self.channels}")
        for i, b in enumerate(bottom[1:], 1):
            if tuple(b.shape) != shape:
                raise self.error(f"all bottoms must have the same shape: bottom[0] {shape} "
                                 f"vs bottom[{i}] {tuple(b.shape)}")
        return shape


@register_layer("Convolution", v1="CONVOLUTION")
class ConvolutionLayer(BaseConvolutionLayer):
    def weight_shape(self):
        return (self.num_output, self.channels // self.group) + self.geom.kernel

    def output_spatial(self, shape):
        g = self.geom
        out = g.output_shape(self.spatial)
        if any(o <= 0 for o in out):
            extent = tuple(kernel_extent(k, d) for k, d in zip(g.kernel, g.dilation))
            raise self.error(f"bottom shape {shape} is too small for kernel extent {extent} "
                             f"with pad {g.pad} (output size {out})")
        return out

    # -- shapes used by the GEMMs -----------------------------------------------------------
    def gemm_sizes(self):
        """(G, output channels per group, input channels x taps per group, output
        positions)."""
        G = self.group
        return (G, self.num_output // G, (self.channels // G) * math.prod(self.geom.kernel),
                math.prod(self.out_spatial))

    def _weights(self):
        G, og, ck, _ = self.sizes
        return self.blobs[0].data.reshape(G, og, ck)

    def _chunks(self):
        _, _, ck, L = self.sizes
        limit = PER_IMAGE_COL_ELEMENTS if self._per_image() else COL_BUFFER_ELEMENTS
        step = max(1, limit // max(1, ck * self.group * L))
        return [slice(i, min(i + step, self.num)) for i in range(0, self.num, step)]

    def _layout(self, n):
        """Column layout for a chunk of n images. batch_inside copies move output rows
        (out_w values); batch_last moves runs of n images (n * out_w at stride 1) but pays
        for transposing the input and the top diff. Measured on CPU, batch_last wins for
        narrow outputs (CaffeNet's 13x13, ResNet's 7x7, LeNet's 8x8) and loses from about
        24 wide, and for 1x1 kernels (whose batch_inside columns are a plain transpose)."""
        ow = self.out_spatial[-1] if self.out_spatial else 1
        taps = 1
        for k in self.geom.kernel:
            taps *= k
        return "batch_last" if n > 1 and taps > 1 and ow <= BATCH_LAST_MAX_WIDTH \
            else "batch_inside"

    def _cols(self, x, per_image=False, layout="batch_inside"):
        """x (n, C, *S) -> columns in the "cols" scratch array: (G, C/G*prod(k), n*L) with
        the n*L columns ordered as ``layout`` says ((n, L) or (L, n)), or with
        ``per_image`` (n, G, C/G*prod(k), L). A 1x1 / stride 1 / pad 0 convolution's
        per-image columns are x itself (no copy)."""
        g = self.geom
        G, _, ck, L = self.sizes
        n = x.shape[0]
        if per_image:
            if g.is_1x1:
                return x.reshape(n, G, ck, L)
            buf = scratch(get_array_module(x), "cols", (n, G * ck * L), x.dtype)
            return im2col(x, g.kernel, g.pad, g.stride, g.dilation, out=buf).reshape(
                n, G, ck, L)
        buf = scratch(get_array_module(x), "cols", (G * ck * n * L,), x.dtype)
        cols = im2col(x, g.kernel, g.pad, g.stride, g.dilation, out=buf, layout=layout)
        return cols.reshape(G, ck, n * L)

    @staticmethod
    def _to_columns_order(a, layout):
        """(n, G, og, L) -> (G, og, n, L) or (G, og, L, n): a view."""
        return a.transpose(1, 2, 0, 3) if layout == "batch_inside" else a.transpose(1, 2, 3, 0)

    @staticmethod
    def _from_columns_order(a, layout):
        """(G, og, n, L) or (G, og, L, n) -> (n, G, og, L): a view."""
        return a.transpose(2, 0, 1, 3) if layout == "batch_inside" else a.transpose(3, 0, 1, 2)

    def _per_image(self):
        """One GEMM per image (large outputs, or a single image); small outputs do one GEMM
        for a chunk of images (small per-image GEMMs run far below the BLAS peak)."""
        return self.sizes[3] >= PER_IMAGE_MIN_POSITIONS or self.num == 1

    def _image(self, blob_array):
        return blob_array.reshape((self.num, self.channels) + self.spatial)

    # -- forward / backward -----------------------------------------------------------------
    def forward(self, bottom, top):
        G, og, ck, L = self.sizes
        w = self._weights()
        # Large outputs: one GEMM per image written straight into the top (no transposes).
        # Small ones: one GEMM for the whole chunk of images, then one transposing copy.
        per_image = self._per_image()
        for b, t in zip(bottom, top):
            x = self._image(b.data)
            xp = get_array_module(x)
            y = t.data.reshape(self.num, G, og, L)
            bias = (self.blobs[1].data.reshape(1, G, og, 1) if self.bias_term else None)
            for c in self._chunks():
                n = c.stop - c.start
                if per_image:
                    xp.matmul(w, self._cols(x[c], per_image=True), out=y[c])
                    self._epilogue(y[c], bias)
                    continue
                layout = self._layout(n)
                yc = scratch(xp, "a", (G, og, n * L), x.dtype)
                xp.matmul(w, self._cols(x[c], layout=layout), out=yc)
                order = (G, og, n, L) if layout == "batch_inside" else (G, og, L, n)
                yc = self._from_columns_order(yc.reshape(order), layout)
                if bias is not None:
                    parallel.ufunc(xp.add, yc, bias, out=y[c])
                else:
                    parallel.copy(y[c], yc)
                self._epilogue(y[c], None)

    # Set by caffelite.transforms.fuse_relu: the negative_slope of the in-place ReLU that
    # follows this layer, applied here to each chunk of output while it is in cache.
    fused_relu = None

    def _epilogue(self, y, bias):
        """The bias (if given) and the fused ReLU (if any) on a chunk y (n, G, og, L) of the
        top, split over its channels for the host threads."""
        xp = get_array_module(y)
        ns = self.fused_relu
        if ns is None:
            if bias is not None:
                parallel.ufunc(xp.add, y, bias, out=y)
            return
        n, channels = y.shape[0], y.shape[1] * y.shape[2]
        rows = y.reshape(n, channels, y.shape[-1])
        b = None if bias is None else bias.reshape(-1, 1)

        def piece(s):
            # all channels at once (one piece: a GPU, or a small chunk); else image by
            # image, each piece's rows contiguous within an image
            whole = s.start == 0 and s.stop == channels
            for part in [rows] if whole else [rows[j, s] for j in range(n)]:
                if b is not None:
                    xp.add(part, b[s], out=part)
                flat = part.reshape(-1)
                relu_flat(flat, flat, ns)
        parallel.for_slices(channels, piece, y.size, xp)

    def backward(self, top, propagate_down, bottom):
        G, og, ck, L = self.sizes
        need_w = self.param_needs_grad(0)
        need_b = self.bias_term and self.param_needs_grad(1)
        w = self._weights()
        g = self.geom
        for i, (t, b) in enumerate(zip(top, bottom)):
            dy = t.diff.reshape(self.num, G, og, L)
            xp = get_array_module(dy)
            if need_b:
                self.blobs[1].diff[...] += dy.reshape(self.num, -1, L).sum(axis=(0, 2))
            if not (need_w or propagate_down[i]):
                continue
            x = self._image(b.data)
            dw = self.blobs[0].diff.reshape(G, og, ck)
            dx = self._image(b.diff)
            for c in self._chunks():
                n = c.stop - c.start
                if self._per_image():
                    self._backward_images(x[c], dy[c], dw if need_w else None,
                                          dx[c] if propagate_down[i] else None)
                    continue
                layout = self._layout(n)
                order = (G, og, n, L) if layout == "batch_inside" else (G, og, L, n)
                # the top diff as (G, og, n*L) in the columns' order: the GEMMs' shared operand
                dyc = scratch(xp, "a", order, dy.dtype)
                parallel.copy(dyc, self._to_columns_order(dy[c], layout))
                dyc = dyc.reshape(G, og, n * L)
                if need_w:
                    part = scratch(xp, "b", (G, og, ck), dy.dtype)
                    xp.matmul(dyc, self._cols(x[c], layout=layout).transpose(0, 2, 1), out=part)
                    dw += part
                if propagate_down[i]:
                    dcols = scratch(xp, "cols", (G, ck, n * L), dy.dtype)
                    _times_weights_t(w, dyc, dcols)
                    col2im(dcols, (n, self.channels) + self.spatial, g.kernel, g.pad,
                           g.stride, g.dilation, out=dx[c], layout=layout)

    def _backward_images(self, x, dy, dw, dx):
        """Backward for images with large outputs, one GEMM per image as in Caffe: no
        transposes, and a weight-gradient GEMM of K = L rather than a long, skinny one of
        K = n*L. Image products are added to ``dw`` in image order (Caffe's order)."""
        G, og, ck, L = self.sizes
        g = self.geom
        xp = get_array_module(dy)
        n = x.shape[0]
        if dw is not None:
            part = scratch(xp, "b", (n, G, og, ck), dy.dtype)
            xp.matmul(dy, self._cols(x, per_image=True).transpose(0, 1, 3, 2), out=part)
            for j in range(n):
                dw += part[j]
        if dx is not None:
            w = self._weights()
            if g.is_1x1:
                xp.matmul(w.transpose(0, 2, 1), dy, out=dx.reshape(n, G, ck, L))
                return
            dcols = scratch(xp, "cols", (n, G, ck, L), dy.dtype)
            _times_weights_t(w, dy, dcols)
            col2im(dcols, (n, self.channels) + self.spatial, g.kernel, g.pad, g.stride,
                   g.dilation, out=dx)
