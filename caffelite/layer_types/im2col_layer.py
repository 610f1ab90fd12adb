"""Im2col: the column buffer of a convolution, as a blob.

bottom (B..., C, S_1..S_n) -> top (B..., C * prod(k), O_1..O_n), where ``axis`` is the channel
axis (axes before it are batch axes), O = floor((S + 2p - (d(k-1)+1)) / s) + 1 and

    top[b, c * prod(k) + t, o] = x[b, c, o * s - p + t * d]     (0 in the padding)

with t the kernel offset in row-major order. Backward is col2im: every bottom cell receives the
sum of the top diffs of the column entries that copied it.
Params: convolution_param {kernel_size, kernel_h, kernel_w, pad, pad_h, pad_w, stride,
stride_h, stride_w, dilation, axis}; num_output, group, bias and fillers are not used.
"""
from ..kernels.im2col import col2im, im2col, kernel_extent
from ..layer import Layer, register_layer
from .conv_geometry import parse_conv_geometry


@register_layer("Im2col", v1="IM2COL")
class Im2colLayer(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        self.geom = parse_conv_geometry(self, bottom[0])
        if self.geom.num_spatial < 1:
            raise self.error(f"needs at least one spatial axis after the channel axis "
                             f"(convolution_param.axis {self.geom.channel_axis}, bottom shape "
                             f"{bottom[0].shape})")

    def reshape(self, bottom, top):
        if top[0] is bottom[0]:
            raise self.error("does not allow in-place computation")
        g = self.geom
        shape = tuple(bottom[0].shape)
        axis = g.channel_axis
        if len(shape) != axis + 1 + g.num_spatial:
            raise self.error(f"bottom num_axes may not change: bottom shape {shape}, set up "
                             f"with {axis + 1 + g.num_spatial} axes")
        self.spatial = shape[axis + 1:]
        self.out_spatial = g.output_shape(self.spatial)
        if any(o <= 0 for o in self.out_spatial):
            extent = tuple(kernel_extent(k, d) for k, d in zip(g.kernel, g.dilation))
            raise self.error(f"bottom shape {shape} is too small for kernel extent {extent} "
                             f"with pad {g.pad} (output size {self.out_spatial})")
        self.num = bottom[0].count_range(0, axis)
        self.channels = shape[axis]
        kp = 1
        for k in g.kernel:
            kp *= k
        top[0].reshape(shape[:axis] + (self.channels * kp,) + self.out_spatial)

    def _image_shape(self):
        return (self.num, self.channels) + self.spatial

    def forward(self, bottom, top):
        g = self.geom
        x = bottom[0].data.reshape(self._image_shape())
        cols = im2col(x, g.kernel, g.pad, g.stride, g.dilation)   # (num, C, *k, *out)
        top[0].data[...] = cols.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        g = self.geom
        cols = top[0].diff.reshape((self.num, self.channels) + g.kernel + self.out_spatial)
        img = col2im(cols, self._image_shape(), g.kernel, g.pad, g.stride, g.dilation)
        bottom[0].diff.reshape(self._image_shape())[...] = img
