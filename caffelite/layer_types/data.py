"""Data: batches of Datums read from an LMDB in key order, transformed and prefetched."""
import logging
import os

import numpy as np

from ..data.image import map_decode
from ..data.lmdb_source import (DataError, LMDBSource, datum_array, key_text, lmdb_kind,
                                parse_datum)
from ..data.prefetch import BasePrefetchingDataLayer
from ..data.transformer import DataTransformer
from ..layer import register_layer

log = logging.getLogger("caffelite")
_WARNED_LEVELDB = set()


@register_layer("Data", v1="DATA")
class DataLayer(BasePrefetchingDataLayer):
    """no bottoms -> data (N, C, crop or H, crop or W) [, label (N,)].

    Records are read in key order and wrap around at the end; each batch takes its shape
    from its items after the transformation (crop -> mirror -> mean -> scale, see
    caffelite.data.transformer), and labels are the Datums' ``label`` as floats. A
    background thread keeps ``prefetch`` batches ready.
    Backend: Caffe's default is LEVELDB. caffelite reads LMDB; a source that is an LMDB is
    read (with a warning, once, when the backend says LEVELDB), a real LevelDB is refused
    with the ways to convert it. ``rand_skip`` is ignored, as in Caffe 1.0.
    Params: data_param {source, batch_size, backend, prefetch, force_encoded_color},
    transform_param."""
    min_top = 1
    max_top = 2

    def setup(self, bottom, top):
        p = self.layer_param.data_param
        if p.batch_size <= 0:
            raise self.error("data_param.batch_size must be positive")
        source = self._open(p)
        tp = self.layer_param.transform_param
        if p.force_encoded_color and tp.force_gray:
            raise self.error("data_param.force_encoded_color and transform_param.force_gray "
                             "cannot both be set")
        self.transformer = DataTransformer(tp, self.phase, self.error_fn)
        color = True if p.force_encoded_color else self.transformer.decode_color
        try:
            key, value = source.first()
            datum = parse_datum(value, key)
            first = datum_array(datum, key, color)
        except DataError as e:
            raise self.error(str(e)) from None
        if (tp.force_color or tp.force_gray) and not datum.encoded:
            log.error("Data layer '%s': force_color and force_gray only apply to encoded "
                      "Datums", self.name)
        shape = self.transformer.output_shape(first.shape, f"first record '{key_text(key)}'")
        top[0].reshape((p.batch_size,) + shape)
        if len(top) > 1:
            top[1].reshape((p.batch_size,))
        loader = _DatumBatches(source, p.batch_size, self.transformer, color, len(top) > 1)
        self.start_prefetch(loader.load)

    def _open(self, p):
        from ..proto import caffe_pb2
        if not p.source:
            raise self.error("data_param.source is not set")
        path = os.path.abspath(p.source)
        kind = lmdb_kind(path)
        if kind == "missing":
            raise self.error(f"data_param.source '{p.source}' does not exist ({path})")
        if kind == "leveldb":
            raise self.error(
                f"data_param.source '{p.source}' is a LevelDB database, which caffelite "
                f"cannot read. Convert it to LMDB: re-create it from the images with "
                f"`caffelite convert_imageset --backend lmdb ...`, or copy its records "
                f"(key -> serialized Datum, same keys) into an LMDB with a LevelDB reader "
                f"such as plyvel; then set data_param.backend: LMDB")
        if kind != "lmdb":
            raise self.error(f"data_param.source '{p.source}' is not an LMDB database "
                             f"(an LMDB is a directory holding data.mdb)")
        if p.backend == caffe_pb2.DataParameter.LEVELDB and path not in _WARNED_LEVELDB:
            _WARNED_LEVELDB.add(path)
            log.warning("Data layer '%s': data_param.backend is LEVELDB (Caffe's default) "
                        "but source '%s' is an LMDB; reading it as LMDB (set backend: LMDB "
                        "to silence this)", self.name, p.source)
        try:
            return LMDBSource(path)
        except DataError as e:
            raise self.error(str(e)) from None


class _DatumBatches:
    """The prefetch thread's work: the next batch_size records, decoded and transformed.
    Holds no reference to the layer, so a dropped net stops its thread."""

    def __init__(self, source, batch_size, transformer, color, labels):
        self.source, self.batch_size = source, batch_size
        self.transformer, self.color, self.labels = transformer, color, labels
        self._records = None

    def load(self):
        if self._records is None:
            self._records = self.source.records()
        items = [next(self._records) for _ in range(self.batch_size)]
        datums = [parse_datum(value, key) for key, value in items]
        keys = [key for key, _ in items]
        if any(d.encoded for d in datums):
            arrays = map_decode(lambda kd: datum_array(kd[1], kd[0], self.color),
                                zip(keys, datums))
        else:
            arrays = [datum_array(d, k, self.color) for k, d in zip(keys, datums)]
        names = [f"record '{key_text(k)}'" for k in keys]
        data = self.transformer.transform_list(arrays, names)
        if not self.labels:
            return (data,)
        return data, np.array([d.label for d in datums], dtype=np.float32)
