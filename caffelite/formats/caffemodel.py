"""Binary ``.caffemodel`` files: read the layers' blobs straight into NumPy, write streaming.

A caffemodel is a NetParameter. Its layers live in field 100 (``layer``, current format),
or in field 2 (``layers``, V1) whose entries may wrap a V0 layer in their field 1.
"""
import mmap
import os

import numpy as np

from ..errors import WeightsError
from .wire import LEN, WireError, encode_len_field, encode_varint, iter_fields, parse_blob

# (name field, blobs field) per layer message
_CURRENT = (1, 7)
_V1 = (4, 6)
_V0 = (1, 50)


def _layer_entry(buf, start, end, fields, nested_v0=False):
    name_field, blobs_field = fields
    name, blobs = None, []
    for f, w, v in iter_fields(buf, start, end):
        if w != LEN:
            continue
        if f == name_field:
            name = bytes(buf[v[0]:v[1]]).decode("utf-8", errors="replace")
        elif f == blobs_field:
            blobs.append(parse_blob(buf, *v))
        elif nested_v0 and f == 1:
            v0_name, v0_blobs = _layer_entry(buf, *v, _V0)
            name = name or v0_name
            blobs.extend(v0_blobs)
    return name or "", blobs


class CaffemodelFile:
    """The layers of a binary caffemodel, their arrays viewing the memory-mapped file.

    ``layers`` is [(layer name, [RawBlob, ...], (start, end) of the layer's bytes)]. Pages
    are read from disk only when an array is copied; ``release(span)`` drops a copied
    layer's pages again, so loading a model costs about one model's worth of memory.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except FileNotFoundError:
            raise WeightsError(f"{self.path}: no such weights file") from None
        self.layers = self._parse()

    def _parse(self):
        buf, path = self.buf, self.path
        layers = []
        try:
            for f, w, v in iter_fields(buf, 0, len(buf)):
                if f == 100 and w == LEN:
                    layers.append(_layer_entry(buf, *v, _CURRENT) + (v,))
                elif f == 2 and w == LEN:
                    layers.append(_layer_entry(buf, *v, _V1, nested_v0=True) + (v,))
        except WireError as e:
            raise WeightsError(f"{path}: not a binary caffemodel, or a truncated/corrupt one "
                               f"({e})") from None
        if not layers:
            what = "the file is empty" if not len(buf) else "it holds no layers"
            raise WeightsError(f"{path}: not a binary caffemodel: {what}")
        return layers

    def check(self, name, blobs):
        """Each blob's data (and diff, if any) holds as many values as its shape says. Only
        the layers a net takes are checked, as Caffe reads only those."""
        for i, blob in enumerate(blobs):
            count = int(np.prod(blob.shape, dtype=np.int64))
            n = 0 if blob.data is None else blob.data.size
            if n != count:
                raise WeightsError(f"{self.path}: layer '{name}' blob {i}: shape {blob.shape} "
                                   f"needs {count} values but the file holds {n}")
            if blob.diff is not None and blob.diff.size not in (0, count):
                raise WeightsError(f"{self.path}: layer '{name}' blob {i}: shape "
                                   f"{blob.shape} needs {count} diff values but the file "
                                   f"holds {blob.diff.size}")

    def release(self, span):
        if isinstance(self.buf, mmap.mmap) and hasattr(self.buf, "madvise"):
            start = span[0] - span[0] % mmap.PAGESIZE
            try:
                self.buf.madvise(mmap.MADV_DONTNEED, start, span[1] - start)
            except (OSError, ValueError, AttributeError):
                pass  # only a memory optimisation


def read_caffemodel_blobs(path):
    """[(layer name, [RawBlob, ...]), ...] in file order."""
    model = CaffemodelFile(path)
    for name, blobs, _ in model.layers:
        model.check(name, blobs)
    return [(name, blobs) for name, blobs, _ in model.layers]


def _blob_bytes(arr, diff):
    """Serialized BlobProto pieces: shape (field 7), data (5), optional diff (6), packed."""
    dims = b"".join(encode_varint(int(d)) for d in arr.shape)
    shape_msg = encode_len_field(1, len(dims)) + dims if dims else b""
    pieces = [encode_len_field(7, len(shape_msg)) + shape_msg]
    data = np.ascontiguousarray(arr, dtype="<f4")
    pieces += [encode_len_field(5, data.nbytes), data]
    if diff is not None:
        d = np.ascontiguousarray(diff, dtype="<f4")
        pieces += [encode_len_field(6, d.nbytes), d]
    return pieces


def write_caffemodel(path, name, layers):
    """Stream a caffemodel to ``path`` atomically.

    layers: [(LayerParameter without blobs, [(data array, diff array or None), ...]), ...]
    """
    from ..proto import caffe_pb2
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(caffe_pb2.NetParameter(name=name).SerializeToString())
        for lp, blobs in layers:
            head = lp.SerializeToString()
            blob_parts = [_blob_bytes(d, g) for d, g in blobs]
            blob_sizes = [sum(len(p) if isinstance(p, bytes) else p.nbytes for p in parts)
                          for parts in blob_parts]
            total = len(head) + sum(len(encode_len_field(7, s)) + s for s in blob_sizes)
            f.write(encode_len_field(100, total))
            f.write(head)
            for size, parts in zip(blob_sizes, blob_parts):
                f.write(encode_len_field(7, size))
                for p in parts:
                    f.write(p if isinstance(p, bytes) else memoryview(p).cast("B"))
    os.replace(tmp, path)
