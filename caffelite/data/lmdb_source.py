"""Datum records from an LMDB, in key order, wrapping around at the end (Caffe's DataReader).

An LMDB is a directory holding ``data.mdb`` (Caffe's layout) or the ``data.mdb`` file
itself. Keys come in LMDB's order: bytewise, shorter first on a common prefix. Records are
serialized ``Datum``s: raw uint8 pixels (C x H x W in ``data``), floats (``float_data``) or
an encoded image (``encoded``: JPEG/PNG bytes, decoded here with Pillow to BGR planes).
"""
import logging
import os
import threading
import weakref

import numpy as np

from ..errors import CaffeliteError
from .image import ImageError, decode_image, hwc_to_chw

log = logging.getLogger("caffelite")

_ENVS = weakref.WeakValueDictionary()  # one Environment per path and process, as LMDB asks
_ENVS_LOCK = threading.Lock()


class DataError(CaffeliteError):
    """A database, record or list entry that cannot be used; the message says which."""


def _lmdb():
    try:
        import lmdb
    except ImportError:
        raise DataError("reading LMDB databases needs the lmdb package: "
                        "pip install lmdb") from None
    return lmdb


def lmdb_kind(path):
    """'lmdb' for an LMDB directory or data.mdb file, 'leveldb' for a LevelDB directory,
    'missing' when nothing is there, else 'unknown'."""
    if not os.path.exists(path):
        return "missing"
    if os.path.isdir(path):
        names = set(os.listdir(path))
        if "data.mdb" in names:
            return "lmdb"
        if "CURRENT" in names or any(n.endswith(".ldb") or n.startswith("MANIFEST-")
                                     for n in names):
            return "leveldb"
        return "unknown"
    with open(path, "rb") as f:
        head = f.read(32)
    # An LMDB data file: its meta page carries the magic 0xBEEFC0DE at byte 16.
    if len(head) >= 20 and int.from_bytes(head[16:20], "little") == 0xBEEFC0DE:
        return "lmdb"
    return "unknown"


def _environment(path):
    lmdb = _lmdb()
    # LMDB refuses a second open of one file in a process: share it, however it is named.
    # The inode is part of the key so that a database re-created at the same path is opened
    # afresh while an old reader still holds the old one.
    data_file = os.path.realpath(os.path.join(path, "data.mdb") if os.path.isdir(path)
                                 else path)
    try:
        st = os.stat(data_file)
        cache_key = (data_file, st.st_dev, st.st_ino)
    except OSError:
        cache_key = (data_file, None, None)
    with _ENVS_LOCK:
        env = _ENVS.get(cache_key)
        if env is None:
            try:
                # lock=False: read-only sources may live on read-only media (no lock file).
                env = lmdb.open(path, readonly=True, lock=False, readahead=False,
                                subdir=os.path.isdir(path), max_readers=512)
            except lmdb.Error as e:
                raise DataError(f"cannot open LMDB '{path}': {e}") from None
            _ENVS[cache_key] = env
        return env


class LMDBSource:
    """Key-ordered, wrapping reader of (key, value) records."""

    def __init__(self, path):
        self.path = os.path.abspath(os.fspath(path))
        self.env = _environment(self.path)
        self.size = self.env.stat()["entries"]
        if self.size == 0:
            raise DataError(f"database '{self.path}' is empty (no records)")

    def first(self):
        with self.env.begin(buffers=False) as txn:
            cursor = txn.cursor()
            cursor.first()
            return cursor.key(), cursor.value()

    def records(self):
        """Endless (key, value) in key order; logs Caffe's line at each wrap."""
        txn = self.env.begin(buffers=False)
        try:
            cursor = txn.cursor()
            if not cursor.first():
                raise DataError(f"database '{self.path}' is empty (no records)")
            while True:
                yield cursor.key(), cursor.value()
                if not cursor.next():
                    log.info("Restarting data prefetching from start.")
                    cursor.first()
        finally:
            txn.abort()


def key_text(key):
    return key.decode("utf-8", "backslashreplace")


def parse_datum(value, key):
    from ..proto import caffe_pb2
    datum = caffe_pb2.Datum()
    try:
        datum.ParseFromString(value)
    except Exception as e:  # DecodeError
        raise DataError(f"record '{key_text(key)}' is not a Datum ({e})") from None
    return datum


def datum_array(datum, key, color=None):
    """A Datum's pixels as C x H x W: uint8 for ``data``, float32 for ``float_data``,
    uint8 BGR (or one plane) for an encoded image; ``color`` as in decode_image."""
    where = f"record '{key_text(key)}'"
    if datum.encoded:
        try:
            return hwc_to_chw(decode_image(datum.data, color, what=where))
        except ImageError as e:
            raise DataError(str(e)) from None
    c, h, w = datum.channels, datum.height, datum.width
    if c <= 0 or h <= 0 or w <= 0:
        raise DataError(f"{where}: Datum has shape {c}x{h}x{w}; channels, height and width "
                        f"must be positive")
    count = c * h * w
    if len(datum.data):
        if len(datum.data) != count:
            raise DataError(f"{where}: Datum holds {len(datum.data)} bytes of data but its "
                            f"shape {c}x{h}x{w} needs {count}")
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(c, h, w)
    if len(datum.float_data) != count:
        raise DataError(f"{where}: Datum holds {len(datum.float_data)} float_data values but "
                        f"its shape {c}x{h}x{w} needs {count}")
    return np.asarray(datum.float_data, dtype=np.float32).reshape(c, h, w)
