"""A minimal protobuf wire-format reader for the parts of a caffemodel that are big.

Parsing a caffemodel through the protobuf runtime turns every float into a Python object on
its way to NumPy; here the packed float runs are handed to ``numpy.frombuffer`` as views of
the file's bytes, so loading costs about one pass over the file and no 2 GB message limit
applies. Everything small (layer names, parameters) still goes through protobuf.
"""
import numpy as np

VARINT, I64, LEN, I32 = 0, 1, 2, 5


class WireError(ValueError):
    pass


def read_varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise WireError("varint too long")


def read_field(buf, pos, end):
    """Decode one field at ``pos``: (field number, wire type, value, next position). The value
    is an int for VARINT fields and a (start, end) byte range for the others."""
    key, pos = read_varint(buf, pos, end)
    field, wtype = key >> 3, key & 7
    if field == 0:
        raise WireError("field number 0")
    if wtype == VARINT:
        value, pos = read_varint(buf, pos, end)
        return field, wtype, value, pos
    if wtype == LEN:
        length, pos = read_varint(buf, pos, end)
        size = length
    elif wtype == I32:
        size = 4
    elif wtype == I64:
        size = 8
    else:
        raise WireError(f"unsupported wire type {wtype}")
    if pos + size > end:
        raise WireError("a field runs past the end of its message")
    return field, wtype, (pos, pos + size), pos + size


def iter_fields(buf, start, end):
    """Yield (field number, wire type, value) for every field in buf[start:end]."""
    pos = start
    while pos < end:
        field, wtype, value, pos = read_field(buf, pos, end)
        yield field, wtype, value


def _signed32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _signed64(v):
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


class RawBlob:
    """A BlobProto decoded to arrays: ``shape`` (legacy 4-D if ``legacy``), data, diff."""
    __slots__ = ("shape", "legacy", "data", "diff")

    def __init__(self, shape, legacy, data, diff):
        self.shape, self.legacy, self.data, self.diff = shape, legacy, data, diff


def _unpacked_run(buf, pos, end, key_byte, dtype):
    """Fast path for a long run of unpacked values: (tag byte, value) records back to back."""
    rec = np.dtype([("k", "u1"), ("v", dtype)])
    n = (end - pos + 1) // rec.itemsize  # the first tag byte is at pos - 1
    view = np.frombuffer(buf, dtype=rec, count=n, offset=pos - 1)
    bad = np.flatnonzero(view["k"] != key_byte)
    run = int(bad[0]) if bad.size else n
    return view["v"][:run], pos - 1 + run * rec.itemsize


def parse_blob(buf, start, end):
    dims4 = {}
    shape = None
    runs = {5: [], 6: [], 8: [], 9: []}
    pos = start
    while pos < end:
        key, pos2 = read_varint(buf, pos, end)
        field, wtype = key >> 3, key & 7
        if field in (5, 6) and wtype == I32 and key < 128:
            values, pos = _unpacked_run(buf, pos2, end, key, "<f4")
            runs[field].append(values)
            continue
        if field in (8, 9) and wtype == I64 and key < 128:
            values, pos = _unpacked_run(buf, pos2, end, key, "<f8")
            runs[field].append(values)
            continue
        f, w, v, pos = read_field(buf, pos, end)
        if f in (1, 2, 3, 4) and w == VARINT:
            dims4[f] = _signed32(v)
        elif f == 7 and w == LEN:
            shape = _parse_shape(buf, *v)
        elif f in (5, 6, 8, 9) and w == LEN:
            dtype = "<f4" if f in (5, 6) else "<f8"
            a, b = v
            size = np.dtype(dtype).itemsize
            if (b - a) % size:
                raise WireError("packed float field has a partial value")
            runs[f].append(np.frombuffer(buf, dtype=dtype, count=(b - a) // size, offset=a))
    legacy = bool(dims4)
    if legacy:
        shape = tuple(dims4.get(i, 0) for i in (1, 2, 3, 4))
    elif shape is None:
        shape = ()

    def join(field):
        parts = runs[field]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    data = join(8) if runs[8] else join(5)
    diff = join(9) if runs[9] else join(6)
    return RawBlob(tuple(shape), legacy, data, diff)


def _parse_shape(buf, start, end):
    dims = []
    for f, w, v in iter_fields(buf, start, end):
        if f != 1:
            continue
        if w == VARINT:
            dims.append(_signed64(v))
        elif w == LEN:
            pos, stop = v
            while pos < stop:
                d, pos = read_varint(buf, pos, stop)
                dims.append(_signed64(d))
    return tuple(dims)


def encode_varint(value):
    out = bytearray()
    value &= 0xFFFFFFFFFFFFFFFF
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_len_field(field, payload_len):
    """The key and length prefix of a length-delimited field (the payload follows)."""
    return encode_varint((field << 3) | LEN) + encode_varint(payload_len)
