"""WindowData (R-CNN): batches of image windows, warped to crop_size, sampled fg/bg."""
import logging
import os

import numpy as np

from .. import backend
from ..data.image import ImageError, decode_image, resize_linear
from ..data.lmdb_source import DataError
from ..data.prefetch import BasePrefetchingDataLayer
from ..data.transformer import load_mean_file
from ..layer import register_layer

log = logging.getLogger("caffelite")
f32 = np.float32


def parse_window_file(source, root_folder, fg_threshold, bg_threshold, error):
    """Records '# idx', path, channels, height, width, num_windows, then one line
    'class overlap x1 y1 x2 y2' per window (whitespace-separated, as Caffe reads them).
    Returns (images [(path, (c, h, w))], fg windows, bg windows); a window is
    (image index, label, x1, y1, x2, y2), background windows get label 0."""
    try:
        with open(source, "r", encoding="utf-8") as f:
            tokens = f.read().split()
    except OSError as e:
        raise error(f"window_data_param.source '{source}' cannot be read "
                    f"({e.strerror or e})") from None
    if not tokens:
        raise error(f"window file '{source}' is empty")
    images, fg, bg, i = [], [], [], 0

    def take(n, what):
        nonlocal i
        if i + n > len(tokens):
            raise error(f"window file '{source}' ends inside record #{len(images)} "
                        f"(expected {what})")
        i += n
        return tokens[i - n:i]

    while i < len(tokens):
        hashtag, index = take(2, "'# image_index'")
        try:
            if hashtag != "#":
                raise ValueError
            index = int(index)
            path = take(1, "the image path")[0]
            c, h, w, num = (int(t) for t in take(4, "channels height width num_windows"))
            for _ in range(num):
                fields = take(6, "'class overlap x1 y1 x2 y2'")
                label, overlap = int(fields[0]), float(fields[1])
                x1, y1, x2, y2 = (int(t) for t in fields[2:])
                if f32(overlap) >= f32(fg_threshold):
                    if label <= 0:
                        raise error(f"window file '{source}', image #{index}: a foreground "
                                    f"window has class {label}; classes must be > 0")
                    fg.append((index, label, x1, y1, x2, y2))
                elif f32(overlap) < f32(bg_threshold):
                    bg.append((index, 0, x1, y1, x2, y2))
        except ValueError:
            raise error(f"window file '{source}' is malformed in record #{len(images)} "
                        f"(near token {i}: '{tokens[min(i, len(tokens)) - 1]}')") from None
        images.append((os.path.abspath(root_folder + path), (c, h, w), index))
    return images, fg, bg


def _cround(x):
    """C's round(): halves away from zero."""
    return int(np.sign(x) * np.floor(abs(float(x)) + 0.5))


def window_geometry(x1, y1, x2, y2, img_h, img_w, crop, context_pad, square, mirror):
    """Caffe's window warp, in float32: the (clipped) source box, the size it is resized to,
    and where it lands (pad_h, pad_w) inside the crop x crop output."""
    size = (crop, crop)
    pad_h = pad_w = 0
    if context_pad > 0 or square:
        context_scale = f32(crop) / f32(crop - 2 * context_pad)
        half_h, half_w = f32(y2 - y1 + 1) / f32(2), f32(x2 - x1 + 1) / f32(2)
        cx, cy = f32(x1) + half_w, f32(y1) + half_h
        if square:
            half_h = half_w = max(half_h, half_w)
        x1, x2 = _cround(cx - half_w * context_scale), _cround(cx + half_w * context_scale)
        y1, y2 = _cround(cy - half_h * context_scale), _cround(cy + half_h * context_scale)
        unclipped_h, unclipped_w = y2 - y1 + 1, x2 - x1 + 1
        pad_x1, pad_y1 = max(0, -x1), max(0, -y1)
        pad_x2, pad_y2 = max(0, x2 - img_w + 1), max(0, y2 - img_h + 1)
        x1, x2, y1, y2 = x1 + pad_x1, x2 - pad_x2, y1 + pad_y1, y2 - pad_y2
        scale_x, scale_y = f32(crop) / f32(unclipped_w), f32(crop) / f32(unclipped_h)
        size_w = _cround(f32(x2 - x1 + 1) * scale_x)
        size_h = _cround(f32(y2 - y1 + 1) * scale_y)
        pad_x1, pad_x2 = _cround(f32(pad_x1) * scale_x), _cround(f32(pad_x2) * scale_x)
        pad_h = _cround(f32(pad_y1) * scale_y)
        pad_w = pad_x2 if mirror else pad_x1  # a flipped window flips its padding too
        size = (min(size_h, crop - pad_h), min(size_w, crop - pad_w))
    return (x1, y1, x2, y2), size, pad_h, pad_w


@register_layer("WindowData", v1="WINDOW_DATA")
class WindowDataLayer(BasePrefetchingDataLayer):
    """no bottoms -> data (batch, C, crop, crop), label (batch,).

    Each batch holds batch - int(batch * fg_fraction) background windows (overlap <
    bg_threshold, label 0) then the foreground ones (overlap >= fg_threshold, their class),
    each drawn uniformly. A window is widened by context_pad (so that after warping there
    are context_pad pixels of context each side), made square first with crop_mode
    "square", clipped to the image (the outside stays 0), resized to crop x crop with
    bilinear warping, flipped at random when transform_param.mirror, and normalised:
    (pixel - mean) * scale, where the mean is the mean_file centre-cropped to crop_size
    (offset (mean_width - crop) // 2 on both axes) or mean_value. As in Caffe 1.0, the
    scale is window_data_param.scale: transform_param.scale is not used here.
    Params: window_data_param {source, batch_size, fg_threshold, bg_threshold,
    fg_fraction, context_pad, crop_mode, cache_images, root_folder, scale},
    transform_param {crop_size, mirror, mean_file, mean_value}, data_param.prefetch."""
    exact_num_top = 2

    def setup(self, bottom, top):
        p = self.layer_param.window_data_param
        tp = self.layer_param.transform_param
        crop = int(tp.crop_size)
        if crop <= 0:
            raise self.error("transform_param.crop_size must be set (> 0) for WindowData")
        if p.batch_size <= 0:
            raise self.error("window_data_param.batch_size must be positive")
        if p.crop_mode not in ("warp", "square"):
            raise self.error(f"window_data_param.crop_mode must be 'warp' or 'square', got "
                             f"'{p.crop_mode}'")
        if 2 * p.context_pad >= crop:
            raise self.error(f"window_data_param.context_pad {p.context_pad} leaves no room "
                             f"in crop_size {crop}")
        if tp.HasField("scale") and tp.scale != 1:
            log.warning("WindowData layer '%s': transform_param.scale is not used (as in "
                        "Caffe 1.0); set window_data_param.scale", self.name)
        images, fg, bg = parse_window_file(p.source, p.root_folder, p.fg_threshold,
                                           p.bg_threshold, self.error)
        num_fg = int(f32(p.batch_size) * f32(p.fg_fraction))
        if num_fg > 0 and not fg:
            raise self.error(f"window file '{p.source}' has no foreground window "
                             f"(overlap >= {p.fg_threshold:g})")
        if p.batch_size - num_fg > 0 and not bg:
            raise self.error(f"window file '{p.source}' has no background window "
                             f"(overlap < {p.bg_threshold:g})")
        for k, (path, (c, _, _), index) in enumerate(images):
            if c != 3:
                raise self.error(f"window file record #{k} ('{path}') says {c} channels; "
                                 f"WindowData reads images in colour (3 channels)")
        for window in fg + bg:
            if not 0 <= window[0] < len(images):
                raise self.error(f"window file '{p.source}': image index {window[0]} is out "
                                 f"of range (the file has {len(images)} images)")
        channels = 3
        mean = self._mean(tp, channels, crop)
        cache = None
        if p.cache_images:
            cache = {}
            for path, _, _ in images:
                try:
                    with open(path, "rb") as f:
                        cache[path] = f.read()
                except OSError as e:
                    raise self.error(f"cannot read image '{path}' ({e.strerror or e})") \
                        from None
        top[0].reshape(p.batch_size, channels, crop, crop)
        top[1].reshape(p.batch_size)
        rng = np.random.default_rng(int(backend.rng().integers(0, 2 ** 63)))
        sampler = _WindowBatches(images, fg, bg, num_fg, p, crop, bool(tp.mirror), mean,
                                 rng, cache)
        self.start_prefetch(sampler.load)

    def _mean(self, tp, channels, crop):
        if tp.HasField("mean_file"):
            if len(tp.mean_value):
                raise self.error("transform_param: give mean_file or mean_value, not both")
            mean = load_mean_file(tp.mean_file, self.error)
            c, h, w = mean.shape
            off = (w - crop) // 2
            if c != channels or off < 0 or h < off + crop:
                raise self.error(f"transform_param.mean_file is {c}x{h}x{w}; WindowData needs "
                                 f"{channels} channels and at least {crop}x{crop} to "
                                 f"centre-crop")
            return mean[:, off:off + crop, off:off + crop]
        values = np.asarray(tp.mean_value, dtype=np.float32)
        if values.size not in (0, 1, channels):
            raise self.error(f"transform_param.mean_value: give 1 value or one per channel "
                             f"({channels}), got {values.size}")
        if values.size == 0:
            return None
        return np.broadcast_to(values.reshape(-1, 1, 1), (channels, crop, crop))


class _WindowBatches:
    """The prefetch thread's work (holds no reference to the layer)."""

    def __init__(self, images, fg, bg, num_fg, p, crop, mirror, mean, rng, cache):
        self.images, self.fg, self.bg, self.num_fg = images, fg, bg, num_fg
        self.batch_size, self.context_pad = int(p.batch_size), int(p.context_pad)
        self.square = p.crop_mode == "square"
        self.scale = f32(p.scale)
        self.crop, self.mirror, self.mean, self.rng, self.cache = crop, mirror, mean, rng, cache

    def _image(self, path):
        try:
            if self.cache is not None:
                return decode_image(self.cache[path], True, what=f"image '{path}'")
            with open(path, "rb") as f:
                return decode_image(f.read(), True, what=f"image '{path}'")
        except OSError as e:
            raise DataError(f"cannot read image '{path}' ({e.strerror or e})") from None
        except ImageError as e:
            raise DataError(str(e)) from None

    def load(self):
        crop = self.crop
        data = np.zeros((self.batch_size, 3, crop, crop), dtype=np.float32)
        labels = np.empty(self.batch_size, dtype=np.float32)
        counts = (self.batch_size - self.num_fg, self.num_fg)
        item = 0
        for pool, count in zip((self.bg, self.fg), counts):
            for _ in range(count):
                window = pool[int(self.rng.integers(len(pool)))]
                flip = self.mirror and bool(self.rng.integers(2))
                path = self.images[window[0]][0]
                img = self._image(path)
                self._put(data[item], img, window, flip, path)
                labels[item] = window[1]
                item += 1
        return data, labels

    def _put(self, out, img, window, flip, path):
        h, w = img.shape[:2]
        (x1, y1, x2, y2), size, pad_h, pad_w = window_geometry(
            *window[2:], h, w, self.crop, self.context_pad, self.square, flip)
        if not (0 <= x1 <= x2 < w and 0 <= y1 <= y2 < h) or min(size) <= 0:
            raise DataError(f"window ({window[2]}, {window[3]}, {window[4]}, {window[5]}) of "
                            f"image '{path}' ({w}x{h}) lies outside the image")
        patch = resize_linear(img[y1:y2 + 1, x1:x2 + 1], *size)
        if flip:
            patch = patch[:, ::-1]
        rows, cols = patch.shape[:2]
        region = (slice(None), slice(pad_h, pad_h + rows), slice(pad_w, pad_w + cols))
        chw = patch.transpose(2, 0, 1)
        if self.mean is not None:
            np.subtract(chw, self.mean[region], out=out[region], dtype=np.float32)
        else:
            out[region] = chw
        out[region] *= self.scale
