"""Data sources and transformations for the data layers (layer_types/data.py, image_data.py,
window_data.py, memory_data.py, hdf5_data.py).

- ``transformer``: Caffe's DataTransformer (crop -> mirror -> mean -> scale) over a batch.
- ``lmdb_source``: Datum records from an LMDB in key order, wrapping around; Datum decoding.
- ``image``: Pillow decoding to OpenCV's BGR planes and OpenCV's bilinear resize.
- ``prefetch``: the background prefetch thread and the base class of prefetching layers.
"""
from .image import decode_image, read_image, resize_linear
from .lmdb_source import DataError, LMDBSource, datum_array, lmdb_kind, parse_datum
from .prefetch import BasePrefetchingDataLayer, Prefetcher
from .transformer import DataTransformer, load_mean_file

__all__ = ["DataTransformer", "load_mean_file", "LMDBSource", "DataError", "datum_array",
           "parse_datum", "lmdb_kind", "decode_image", "read_image", "resize_linear",
           "Prefetcher", "BasePrefetchingDataLayer"]
