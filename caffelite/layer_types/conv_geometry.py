"""Convolution geometry: convolution_param's kernel, pad, stride and dilation per spatial
axis, read and checked the way Caffe's BaseConvolutionLayer reads them (shared by
Convolution, Deconvolution and Im2col)."""
from ..kernels.im2col import conv_output_shape


class ConvGeometry:
    """Channel axis and per-spatial-axis kernel/pad/stride/dilation of a convolution_param."""

    def __init__(self, channel_axis, num_spatial, kernel, pad, stride, dilation):
        self.channel_axis = channel_axis
        self.num_spatial = num_spatial
        self.kernel, self.pad, self.stride, self.dilation = kernel, pad, stride, dilation

    @property
    def is_1x1(self):
        return (all(k == 1 for k in self.kernel) and all(s == 1 for s in self.stride)
                and not any(self.pad))

    def output_shape(self, spatial):
        return conv_output_shape(spatial, self.kernel, self.pad, self.stride, self.dilation)


def _spatial_values(layer, p, name, n, default, hw=None):
    """Read a repeated geometry field given 0 (default), 1 or n times, or its 2-D form
    ``hw``_h/``hw``_w."""
    rep = [int(v) for v in getattr(p, name)]
    if hw and (p.HasField(hw + "_h") or p.HasField(hw + "_w")):
        if n != 2:
            raise layer.error(f"convolution_param.{hw}_h/{hw}_w can only be used for 2-D "
                              f"convolution, the bottom has {n} spatial axes")
        if rep:
            raise layer.error(f"convolution_param: give either {name} or {hw}_h/{hw}_w, "
                              f"not both")
        return (int(getattr(p, hw + "_h")), int(getattr(p, hw + "_w")))
    if not rep and default is not None:
        return (default,) * n
    if len(rep) == 1:
        return tuple(rep) * n
    if len(rep) != n:
        raise layer.error(f"convolution_param.{name} must be specified once, or once per "
                          f"spatial dimension ({name} specified {len(rep)} times; {n} "
                          f"spatial dims)")
    return tuple(rep)


def parse_conv_geometry(layer, bottom_blob):
    """Validate ``layer``'s convolution_param geometry against the first bottom's axes."""
    p = layer.layer_param.convolution_param
    try:
        axis = bottom_blob.canonical_axis(p.axis)
    except Exception as e:
        raise layer.error(f"convolution_param.axis: {e} (bottom shape {bottom_blob.shape})")
    n = bottom_blob.num_axes - axis - 1
    kernel = _spatial_values(layer, p, "kernel_size", n, None, "kernel")
    if any(k <= 0 for k in kernel):
        raise layer.error(f"filter dimensions must be nonzero: kernel {kernel}")
    stride = _spatial_values(layer, p, "stride", n, 1, "stride")
    if any(s <= 0 for s in stride):
        raise layer.error(f"stride dimensions must be nonzero: stride {stride}")
    pad = _spatial_values(layer, p, "pad", n, 0, "pad")
    dilation = _spatial_values(layer, p, "dilation", n, 1)
    return ConvGeometry(axis, n, kernel, pad, stride, dilation)
