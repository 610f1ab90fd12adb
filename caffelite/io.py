"""pycaffe's ``caffe.io``: BlobProto and Datum conversions (same signatures and results)."""
import numpy as np

from .formats.blobproto import blobproto_shape


def blobproto_to_array(blob, return_diff=False):
    """BlobProto -> float64 array shaped by the legacy 4-D dims if present, else shape.dim."""
    if return_diff:
        values = blob.double_diff if len(blob.double_diff) else blob.diff
    else:
        values = blob.double_data if len(blob.double_data) else blob.data
    return np.array(values, dtype=np.float64).reshape(blobproto_shape(blob))


def array_to_blobproto(arr, diff=None):
    """N-D array (and optional diff of the same shape) -> BlobProto with ``shape.dim``."""
    from .proto import caffe_pb2
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(int(d) for d in arr.shape)
    blob.data.extend(arr.astype(np.float32).ravel())
    if diff is not None:
        diff = np.asarray(diff)
        if diff.shape != arr.shape:
            raise ValueError(f"diff shape {diff.shape} differs from data shape {arr.shape}")
        blob.diff.extend(diff.astype(np.float32).ravel())
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    from .proto import caffe_pb2
    vec = caffe_pb2.BlobProtoVector()
    for arr in arraylist:
        vec.blobs.add().CopyFrom(array_to_blobproto(arr))
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(s):
    from .proto import caffe_pb2
    vec = caffe_pb2.BlobProtoVector()
    vec.ParseFromString(s)
    return [blobproto_to_array(b) for b in vec.blobs]


def array_to_datum(arr, label=None):
    """C×H×W array -> Datum: uint8 arrays go to ``data`` bytes, others to ``float_data``."""
    from .proto import caffe_pb2
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"Incorrect array shape: a Datum needs C×H×W, got {arr.shape}")
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float32).ravel())
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum):
    """Datum -> C×H×W array: uint8 from ``data``, float64 from ``float_data``."""
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape).copy()
    return np.array(datum.float_data, dtype=np.float64).reshape(shape)


def load_mean_file(path):
    """A ``.binaryproto`` mean file as pycaffe reads it: (1, C, H, W) float64."""
    from .formats.prototxt import read_binary
    from .proto import caffe_pb2
    return blobproto_to_array(read_binary(path, caffe_pb2.BlobProto()))


def save_mean_file(arr, path):
    """Write a mean as compute_image_mean does: a BlobProto with legacy 4-D dims."""
    from .formats.blobproto import array_to_blobproto as to_bp
    with open(path, "wb") as f:
        f.write(to_bp(np.asarray(arr), legacy_dims=True).SerializeToString())


# -- images -------------------------------------------------------------------------------------

# luminance weights of skimage's rgb2gray, which pycaffe's load_image(color=False) used
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float64)


def load_image(filename, color=True):
    """An image file as float32 H×W×C in [0, 1] (RGB, or H×W×1 gray), read with Pillow."""
    from PIL import Image
    with Image.open(filename) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64) / 65535.0
            arr = arr[:, :, None]
        elif im.mode in ("L", "1"):
            arr = np.asarray(im.convert("L"), dtype=np.float64)[:, :, None] / 255.0
        else:
            arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    if color and arr.shape[2] == 1:
        arr = np.tile(arr, (1, 1, 3))
    elif not color and arr.shape[2] == 3:
        arr = (arr @ _GRAY_WEIGHTS)[:, :, None]
    return arr.astype(np.float32)


def _bilinear(im, out_h, out_w):
    """Order-1 resize with pixel-centre alignment and zero padding outside the image, as
    skimage.transform.resize(order=1, mode='constant') without anti-aliasing."""
    h, w = im.shape[:2]

    def axis_weights(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        lo = np.floor(src).astype(int)
        frac = src - lo
        return lo, frac

    def gather(arr, idx, axis):
        valid = (idx >= 0) & (idx < arr.shape[axis])
        taken = np.take(arr, np.clip(idx, 0, arr.shape[axis] - 1), axis=axis)
        shape = [1] * arr.ndim
        shape[axis] = -1
        return taken * valid.reshape(shape)

    y0, fy = axis_weights(h, out_h)
    x0, fx = axis_weights(w, out_w)
    rows = gather(im, y0, 0) * (1 - fy)[:, None, None] + gather(im, y0 + 1, 0) * fy[:, None, None]
    return gather(rows, x0, 1) * (1 - fx)[None, :, None] + gather(rows, x0 + 1, 1) * fx[None, :, None]


def _nearest(im, out_h, out_w):
    h, w = im.shape[:2]
    ys = np.minimum(((np.arange(out_h) + 0.5) * h / out_h).astype(int), h - 1)
    xs = np.minimum(((np.arange(out_w) + 0.5) * w / out_w).astype(int), w - 1)
    return im[ys][:, xs]


def _zoom(im, out_h, out_w, order):
    """scipy.ndimage.zoom(im, (out_h/h, out_w/w, 1), order) for order 0 or 1: output corners
    on input corners (o -> o * (n_in - 1) / (n_out - 1)), linear or nearest in between."""
    def coords(n_in, n_out):
        step = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
        return np.arange(n_out) * step

    def along(arr, n_out, axis):
        c = coords(arr.shape[axis], n_out)
        if order == 0:
            return np.take(arr, np.floor(c + 0.5).astype(int), axis=axis)
        lo = np.minimum(np.floor(c).astype(int), arr.shape[axis] - 1)
        hi = np.minimum(lo + 1, arr.shape[axis] - 1)
        frac = (c - lo).reshape([-1 if a == axis else 1 for a in range(arr.ndim)])
        return np.take(arr, lo, axis=axis) * (1 - frac) + np.take(arr, hi, axis=axis) * frac
    return along(along(im, out_h, 0), out_w, 1)


def resize_image(im, new_dims, interp_order=1):
    """Resize H×W×K ``im`` to ``new_dims`` (H', W'): bilinear (order 1) or nearest (0).

    As pycaffe: images of 1 or 3 channels are resized as skimage does (pixel centres), after
    stretching them to [0, 1] and mapped back (a constant image comes back constant); other
    channel counts as scipy.ndimage.zoom does (corners aligned, values as they are).
    """
    im = np.asarray(im, dtype=np.float64)
    if im.ndim == 2:
        im = im[:, :, None]
    out_h, out_w = int(new_dims[0]), int(new_dims[1])
    if interp_order not in (0, 1):
        raise ValueError("resize_image supports interp_order 0 (nearest) or 1 (bilinear)")
    if im.shape[-1] not in (1, 3):
        return _zoom(im, out_h, out_w, interp_order).astype(np.float32)
    lo, hi = im.min(), im.max()
    if hi == lo:
        return np.full((out_h, out_w, im.shape[-1]), lo, dtype=np.float32)
    std = (im - lo) / (hi - lo)
    resized = (_bilinear if interp_order == 1 else _nearest)(std, out_h, out_w)
    return (resized * (hi - lo) + lo).astype(np.float32)


def oversample(images, crop_dims):
    """The 10 crops of each H×W×K image: 4 corners and the centre, then their mirrors."""
    im_shape = np.array(images[0].shape)
    crop_dims = np.array(crop_dims)
    center = im_shape[:2] / 2.0
    starts = [(i, j) for i in (0, im_shape[0] - crop_dims[0]) for j in (0, im_shape[1] - crop_dims[1])]
    boxes = np.empty((5, 4), dtype=int)
    for k, (i, j) in enumerate(starts):
        boxes[k] = (i, j, i + crop_dims[0], j + crop_dims[1])
    boxes[4] = np.concatenate([center - crop_dims / 2.0, center + crop_dims / 2.0])
    crops = np.empty((10 * len(images), crop_dims[0], crop_dims[1], im_shape[-1]),
                     dtype=np.float32)
    ix = 0
    for im in images:
        for y0, x0, y1, x1 in boxes:
            crops[ix] = im[y0:y1, x0:x1, :]
            ix += 1
        for k in range(5):
            crops[ix] = crops[ix - 5][:, ::-1, :]
            ix += 1
    return crops


class Transformer:
    """pycaffe's input preprocessing for a net: H×W×K images -> K×H×W net inputs.

    ``inputs`` maps input names to net input shapes (N, C, H, W). preprocess applies, in
    order: resize to the input's H×W, transpose, channel swap, raw scale, mean subtraction,
    input scale; deprocess undoes them.
    """

    def __init__(self, inputs):
        self.inputs = dict(inputs)
        self.transpose, self.channel_swap, self.raw_scale = {}, {}, {}
        self.mean, self.input_scale = {}, {}

    def _check_input(self, name):
        if name not in self.inputs:
            raise KeyError(f"{name} is not one of the net inputs: {list(self.inputs)}")

    def preprocess(self, in_, data):
        self._check_input(in_)
        out = np.asarray(data).astype(np.float32, copy=False)
        dims = tuple(self.inputs[in_][2:])
        if out.shape[:2] != dims:
            out = resize_image(out, dims)
        if in_ in self.transpose:
            out = out.transpose(self.transpose[in_])
        if in_ in self.channel_swap:
            out = out[list(self.channel_swap[in_]), :, :]
        if in_ in self.raw_scale:
            out = out * self.raw_scale[in_]
        if in_ in self.mean:
            out = out - self.mean[in_]
        if in_ in self.input_scale:
            out = out * self.input_scale[in_]
        return out.astype(np.float32, copy=False)

    def deprocess(self, in_, data):
        self._check_input(in_)
        out = np.array(data, dtype=np.float32).squeeze()
        if in_ in self.input_scale:
            out /= self.input_scale[in_]
        if in_ in self.mean:
            out += self.mean[in_]
        if in_ in self.raw_scale:
            out /= self.raw_scale[in_]
        if in_ in self.channel_swap:
            out = out[np.argsort(self.channel_swap[in_]), :, :]
        if in_ in self.transpose:
            out = out.transpose(np.argsort(self.transpose[in_]))
        return out

    def set_transpose(self, in_, order):
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError("Transpose order needs to have the same number of dimensions as "
                             "the input.")
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError("Channel swap needs to have the same number of dimensions as the "
                             "input channels.")
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """A per-channel mean (C,) or an elementwise mean (C×H×W or H×W). An elementwise
        mean of another H×W (ImageNet's 256×256 mean for a 227×227 input) is resized to the
        input's, as pycaffe does: stretched to [0, 1], resized with ``resize_image``, and
        mapped back."""
        self._check_input(in_)
        mean = np.asarray(mean)
        if mean.ndim == 1:
            if mean.shape[0] != self.inputs[in_][1]:
                raise ValueError("Mean channels incompatible with input.")
            mean = mean[:, None, None]
        else:
            shape = (1,) + mean.shape if mean.ndim == 2 else mean.shape
            if len(shape) != 3:
                raise ValueError("Mean shape invalid")
            want = tuple(self.inputs[in_][1:])
            if tuple(shape) != want:
                if shape[0] != want[0]:
                    raise ValueError(f"Mean shape incompatible with input shape: the mean has "
                                     f"{shape[0]} channels, input {in_!r} has {want[0]}")
                # pycaffe stretches the mean to [0, 1] for resize_image, which does that
                # itself (and keeps a constant mean constant)
                mean = resize_image(mean.reshape(shape).transpose(1, 2, 0),
                                    want[1:]).transpose(2, 0, 1)
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        self._check_input(in_)
        self.input_scale[in_] = scale
