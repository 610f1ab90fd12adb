"""Binary ``.caffemodel`` files: read the layers' blobs straight into NumPy, write streaming.

A caffemodel is a NetParameter. Its layers live in field 100 (``layer``, current format),
or in field 2 (``layers``, V1) whose entries may wrap a V0 layer in their field 1.
"""
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


def read_caffemodel_blobs(path):
    """[(layer name, [RawBlob, ...]), ...] in file order; the arrays view the file's bytes."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file") from None
    layers = []
    try:
        for f, w, v in iter_fields(buf, 0, len(buf)):
            if f == 100 and w == LEN:
                layers.append(_layer_entry(buf, *v, _CURRENT))
            elif f == 2 and w == LEN:
                layers.append(_layer_entry(buf, *v, _V1, nested_v0=True))
    except WireError as e:
        raise WeightsError(f"{path}: not a binary caffemodel, or a truncated/corrupt one "
                           f"({e})") from None
    if not layers:
        what = "the file is empty" if not buf else "it holds no layers"
        raise WeightsError(f"{path}: not a binary caffemodel: {what}")
    for name, blobs in layers:
        for i, blob in enumerate(blobs):
            count = int(np.prod(blob.shape, dtype=np.int64))
            n = 0 if blob.data is None else blob.data.size
            if n != count:
                raise WeightsError(f"{path}: layer '{name}' blob {i}: shape {blob.shape} needs "
                                   f"{count} values but the file holds {n}")
    return layers


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
