"""Coordinate maps between the tops of a NetSpec (pycaffe's ``caffe.coord_map``), mostly to
compute the Crop that aligns an upsampled score map with its input, as FCNs do:

    from caffelite.coord_map import crop
    n.score = crop(n.upscore, n.data)     # L.Crop(n.upscore, n.data, crop_param=...)

A map is ``(axis, a, b)``: along the spatial axes after ``axis``, a coordinate x in a layer's
bottom sits at ``a * x + b`` in its top (``a`` and ``b`` are arrays, one entry per spatial
axis or one for all; ``axis`` None means the layer keeps coordinates, whatever the axis).
Convolution, Pooling and Im2col take x to ``(x + pad - (k - 1) / 2) / stride`` (the centre of
the window), Deconvolution to ``stride * x + (k - 1) / 2 - pad``, Crop to ``x - offset``,
and element-wise layers keep x. k is the kernel extent with dilation.
"""
import numpy as np

# Layers whose top has its bottom's coordinates.
PASS_THROUGH_LAYERS = ("AbsVal", "BatchNorm", "Bias", "BNLL", "Dropout", "Eltwise", "ELU",
                       "Log", "LRN", "Exp", "MVN", "Power", "ReLU", "PReLU", "Scale",
                       "Sigmoid", "Split", "TanH", "Threshold")


class UndefinedMapException(Exception):
    """The layer type has no coordinate map."""


class AxisMismatchException(Exception):
    """Two maps act on different axes and cannot be composed."""


def _vector(value):
    return np.array(value, dtype=float, ndmin=1)


def conv_params(fn):
    """(axis, stride, kernel extent, pad) of a Convolution/Pooling/Deconvolution/Im2col
    NetSpec function, from its convolution_param or its flat keyword arguments."""
    params = fn.params.get("convolution_param", fn.params)
    legacy = {"pad_h", "pad_w", "kernel_h", "kernel_w", "stride_h", "stride_w"} & set(params)
    if legacy:
        raise ValueError(f"coord_map: layer {fn.type_name} uses {sorted(legacy)}; cropping "
                         f"supports only pad, kernel_size and stride")
    kernel = _vector(params["kernel_size"])
    dilation = _vector(params.get("dilation", 1))
    return (params.get("axis", 1), _vector(params.get("stride", 1)),
            (kernel - 1) * dilation + 1, _vector(params.get("pad", 0)))


def crop_params(fn):
    """(axis, offset) of a Crop NetSpec function (axis 2: the first spatial axis of NCHW)."""
    params = fn.params.get("crop_param", fn.params)
    return params.get("axis", 2), _vector(params.get("offset", 0))


def coord_map(fn):
    """The (axis, a, b) map from ``fn``'s bottom to its top."""
    if fn.type_name in ("Convolution", "Pooling", "Im2col"):
        axis, stride, extent, pad = conv_params(fn)
        return axis, 1 / stride, (pad - (extent - 1) / 2) / stride
    if fn.type_name == "Deconvolution":
        axis, stride, extent, pad = conv_params(fn)
        return axis, stride, (extent - 1) / 2 - pad
    if fn.type_name in PASS_THROUGH_LAYERS:
        return None, 1, 0
    if fn.type_name == "Crop":
        axis, offset = crop_params(fn)
        return axis - 1, 1, -offset         # Crop counts the first cropped axis
    raise UndefinedMapException(f"no coordinate map for layer type {fn.type_name}")


def compose(base_map, next_map):
    """The map applying ``next_map`` first, then ``base_map``."""
    ax1, a1, b1 = base_map
    ax2, a2, b2 = next_map
    if ax1 is None:
        ax = ax2
    elif ax2 is None or ax1 == ax2:
        ax = ax1
    else:
        raise AxisMismatchException(f"cannot compose maps on axes {ax1} and {ax2}")
    return ax, a1 * a2, a1 * b2 + b1


def inverse(coord_map):
    ax, a, b = coord_map
    return ax, 1 / a, -b / a


def _bottoms(top):
    # a Crop's second bottom only gives the size: coordinates come through the first
    inputs = top.fn.inputs
    return inputs[:1] if top.fn.type_name == "Crop" else inputs


def _walk_back(top, meet=None):
    """Walk from ``top`` to its ancestors through layers with maps: (None, {ancestor: map
    from the ancestor's coordinates to ``top``'s}). With ``meet`` (another walk's maps) the
    walk stops at the first top found there: (that top, the maps so far)."""
    maps, frontier = {top: (None, 1, 0)}, [top]
    while frontier:
        t = frontier.pop()
        if meet is not None and t in meet:
            return t, maps
        try:
            step = coord_map(t.fn)
        except UndefinedMapException:
            continue
        for bottom in _bottoms(t):
            maps[bottom] = compose(maps[t], step)
            frontier.append(bottom)
    return None, maps


def coord_map_from_to(top_from, top_to):
    """The map from ``top_from``'s coordinates to ``top_to``'s, through the first common
    ancestor found walking back from top_to."""
    _, from_maps = _walk_back(top_from)
    common, to_maps = _walk_back(top_to, meet=from_maps)
    if common is None:
        raise RuntimeError("Could not compute map between tops; are they connected by "
                           "spatial layers?")
    return compose(to_maps[common], inverse(from_maps[common]))


def crop(top_from, top_to):
    """An L.Crop of ``top_from`` to ``top_to``'s size, at the offset their coordinate map
    gives (it must be a whole, non-negative shift at scale 1)."""
    from .net_spec import layers as L
    ax, a, b = coord_map_from_to(top_from, top_to)
    if not (np.asarray(a) == 1).all():
        raise ValueError(f"crop: scale mismatch on crop (a = {a})")
    if not (np.asarray(b) <= 0).all():
        raise ValueError(f"crop: cannot crop negative offset (b = {b})")
    if not (np.round(b) == b).all():
        raise ValueError(f"crop: cannot crop noninteger offset (b = {b})")
    offsets = [int(v) for v in -np.round(np.asarray(b, dtype=float).reshape(-1))]
    return L.Crop(top_from, top_to, crop_param=dict(axis=ax + 1, offset=offsets))
