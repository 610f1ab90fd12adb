"""Read a net definition from a file (text or binary), applying Caffe's upgrades."""
import os

from .prototxt import read_binary, read_prototxt
from .upgrade import upgrade_net


def _kind(path):
    """"binary" (a NUL byte near the start), "text" (UTF-8), or None (other bytes: a text
    file with e.g. GBK comments, or a binary net)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"\x00" in head:
        return "binary"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text"


def read_net(path):
    """NetParameter from a prototxt (or a binary net), upgraded as Caffe does on read."""
    from ..errors import PrototxtError
    from ..proto import caffe_pb2
    path = os.fspath(path)
    if not os.path.exists(path):
        raise PrototxtError(f"{path}: no such file")
    param = caffe_pb2.NetParameter()
    kind = _kind(path)
    if kind == "binary":
        read_binary(path, param)
    elif kind == "text":
        read_prototxt(path, param)
    else:
        try:
            read_prototxt(path, param)
        except PrototxtError as text_error:
            param.Clear()
            try:
                read_binary(path, param)
            except Exception:
                raise text_error from None
    return upgrade_net(param, path)
