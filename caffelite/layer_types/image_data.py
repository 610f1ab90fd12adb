"""ImageData: batches of image files listed with their labels, transformed and prefetched."""
import logging
import os

import numpy as np

from .. import backend
from ..data.image import ImageError, hwc_to_chw, map_decode, read_image
from ..data.lmdb_source import DataError
from ..data.prefetch import BasePrefetchingDataLayer
from ..data.transformer import DataTransformer
from ..layer import register_layer

log = logging.getLogger("caffelite")


def parse_image_list(source, root_folder="", error=DataError):
    """Lines ``path label`` split at the LAST space (paths may hold spaces); blank lines are
    skipped. Returns [(path as given, full path, label, line number)]; the full path is
    root_folder + path (string concatenation, as Caffe), made absolute now so later changes
    of the working directory do not matter."""
    try:
        with open(source, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise error(f"image_data_param.source '{source}' cannot be read "
                    f"({e.strerror or e})") from None
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.rstrip()
        if not line.strip():
            continue
        pos = line.rfind(" ")
        label_text = line[pos + 1:]
        if pos < 0 or not line[:pos].strip():
            raise error(f"{source}:{lineno}: '{line}' has no label (lines are 'path label')")
        try:
            label = int(label_text)
        except ValueError:
            try:  # Caffe reads the label with atoi, which truncates "3.0" to 3
                label = int(float(label_text))
            except ValueError:
                raise error(f"{source}:{lineno}: label '{label_text}' of '{line}' is not a "
                            f"number") from None
        path = line[:pos]
        entries.append((path, os.path.abspath(root_folder + path), label, lineno))
    if not entries:
        raise error(f"image_data_param.source '{source}' lists no images")
    return entries


@register_layer("ImageData", v1="IMAGE_DATA")
class ImageDataLayer(BasePrefetchingDataLayer):
    """no bottoms -> data (N, C, crop or H, crop or W), label (N,).

    Images are read as BGR (3 channels) or, with is_color false, as one gray plane,
    resized to new_height x new_width with OpenCV's bilinear rule when both are > 0, then
    transformed (crop -> mirror -> mean -> scale). Each batch takes its shape from its
    items. With ``shuffle`` the list is shuffled at start and again at every wrap;
    ``rand_skip`` skips rand() % rand_skip lines at start. batch_size defaults to 1.
    Params: image_data_param {source, batch_size, shuffle, new_height, new_width, is_color,
    root_folder, rand_skip}, transform_param, data_param.prefetch."""
    exact_num_top = 2

    def setup(self, bottom, top):
        p = self.layer_param.image_data_param
        if (p.new_height > 0) != (p.new_width > 0):
            raise self.error("image_data_param.new_height and new_width must both be set "
                             "(> 0) or both be 0")
        if p.batch_size <= 0:
            raise self.error("image_data_param.batch_size must be positive")
        if not p.source:
            raise self.error("image_data_param.source is not set")
        entries = parse_image_list(p.source, p.root_folder, self.error)
        self.transformer = DataTransformer(self.layer_param.transform_param, self.phase,
                                           self.error_fn)
        shuffle_rng = None
        order = np.arange(len(entries))
        if p.shuffle:
            shuffle_rng = np.random.default_rng(int(backend.rng().integers(0, 2 ** 63)))
            shuffle_rng.shuffle(order)
        pos = 0
        if p.rand_skip:
            pos = int(backend.rng().integers(0, 2 ** 32)) % p.rand_skip
            if pos >= len(entries):
                raise self.error(f"image_data_param.rand_skip drew a skip of {pos} lines but "
                                 f"'{p.source}' lists only {len(entries)} images")
        reader = _ImageReader(p.source, p.new_height, p.new_width, p.is_color)
        try:
            first = reader(entries[order[pos]])
        except DataError as e:
            raise self.error(str(e)) from None
        shape = self.transformer.output_shape(first.shape, reader.name(entries[order[pos]]))
        top[0].reshape((p.batch_size,) + shape)
        top[1].reshape((p.batch_size,))
        self.start_prefetch(_ImageBatches(entries, order, pos, shuffle_rng, p.batch_size,
                                          reader, self.transformer).load)


class _ImageReader:
    def __init__(self, source, height, width, color):
        self.source, self.height, self.width, self.color = source, height, width, color

    def name(self, entry):
        return f"image '{entry[0]}' ({self.source}:{entry[3]})"

    def __call__(self, entry):
        try:
            img = read_image(entry[1], self.color, self.height, self.width)
        except ImageError as e:
            raise DataError(f"{self.source}:{entry[3]}: {e}") from None
        return hwc_to_chw(img)


class _ImageBatches:
    """The prefetch thread's work (holds no reference to the layer)."""

    def __init__(self, entries, order, pos, shuffle_rng, batch_size, reader, transformer):
        self.entries, self.order, self.pos = entries, order, pos
        self.shuffle_rng, self.batch_size = shuffle_rng, batch_size
        self.reader, self.transformer = reader, transformer

    def load(self):
        picked = []
        for _ in range(self.batch_size):
            picked.append(self.entries[self.order[self.pos]])
            self.pos += 1
            if self.pos >= len(self.entries):
                log.info("Restarting data prefetching from start.")
                self.pos = 0
                if self.shuffle_rng is not None:
                    self.shuffle_rng.shuffle(self.order)
        images = map_decode(self.reader, picked)
        data = self.transformer.transform_list(images, [self.reader.name(e) for e in picked])
        return data, np.array([e[2] for e in picked], dtype=np.float32)
