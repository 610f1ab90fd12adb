"""Reusable scratch arrays, so the hot loops do not allocate (and page-fault) big temporaries
on every iteration.

``scratch(xp, slot, shape, dtype)`` hands out a view of one flat byte buffer per (thread,
array module, device, slot), any dtype. The buffer grows to the largest request and is then
reused: the contents are undefined, and the view is valid only until the next request for
the same slot from the same thread. Layers run one after another, so one set of slots serves
a whole net (like Caffe's shared column buffer or cuDNN's workspace), and its size is the
largest single layer's need, not the sum over layers. A kernel that needs several live
scratch arrays at once asks for different slots:

    "cols"   the big one: convolution columns and their gradient, pooling's tap stack
    "pad"    padded copies of an input (im2col, pooling)
    "accum"  accumulators: col2im's padded image, pooling's AVE gradient, blocked GEMM output
    "a" .. "d"  a layer's own temporaries (masks, transposed operands, partial results)

A function that takes an ``out`` array from its caller uses only slots the caller does not
hand it (im2col: "pad"; col2im: "accum").
"""
import math
import threading

import numpy as np

_local = threading.local()


def _device_key(xp):
    cuda = getattr(xp, "cuda", None)          # NumPy has no ``cuda``: host memory
    return cuda.Device().id if cuda is not None else -1


def scratch(xp, slot, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype`` in ``xp``, reused across calls."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    dtype = np.dtype(dtype)
    key = (xp.__name__, _device_key(xp), slot)
    n = math.prod(int(d) for d in shape)
    nbytes = max(n * dtype.itemsize, 1)
    buf = pool.get(key)
    if buf is None or buf.size < nbytes:
        pool.pop(key, None)                   # free the old buffer before the new one exists
        buf = pool[key] = xp.empty(nbytes, dtype=np.uint8)
    return buf[:n * dtype.itemsize].view(dtype).reshape(shape)


def release():
    """Free every scratch buffer of this thread (they are re-created on demand)."""
    _local.pool = {}


def nbytes():
    """Bytes held by this thread's scratch buffers."""
    return sum(b.nbytes for b in getattr(_local, "pool", {}).values())
