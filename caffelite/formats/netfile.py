"""Read a net definition from a file (text or binary), applying Caffe's upgrades."""
import os

from .prototxt import read_binary, read_prototxt
from .upgrade import upgrade_net


def _looks_binary(path):
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def read_net(path):
    """NetParameter from a prototxt (or a binary net), upgraded as Caffe does on read."""
    from ..proto import caffe_pb2
    path = os.fspath(path)
    if not os.path.exists(path):
        from ..errors import PrototxtError
        raise PrototxtError(f"{path}: no such file")
    param = caffe_pb2.NetParameter()
    if _looks_binary(path):
        read_binary(path, param)
    else:
        read_prototxt(path, param)
    return upgrade_net(param, path)
