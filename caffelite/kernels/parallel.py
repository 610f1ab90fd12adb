"""Host-side work split across cores: the part of a layer that is not a BLAS call.

NumPy's matmul runs on every core (OpenBLAS's own threads), but its copies and ufuncs run on
one. Caffe's CPU code is single-threaded there too; caffelite spreads the im2col/col2im
copies, the transposes, pooling, LRN and the element-wise layers over a small pool of
threads. NumPy releases the GIL inside those loops, so the threads really run in parallel.

Only independent pieces are split (images, channels, disjoint ranges of a copy), each piece
computed exactly as the whole would be: results are bit-identical to one thread.

The thread count is, in order: ``set_num_threads(n)``, the environment variable
``CAFFELITE_NUM_THREADS``, ``OMP_NUM_THREADS`` (the usual way to pin a process to n cores),
and the cores this process may run on. 1 turns the pool off. CuPy arrays are never split
(the GPU already runs the whole array at once).
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Pieces smaller than this many elements are not worth waking a thread for (measured on
# ResNet-50 at batch 1, LeNet and CaffeNet: 2^16 was slower, 2^20 no better).
MIN_ELEMENTS = 1 << 18

_lock = threading.Lock()
_state = {"threads": None, "pool": None}
_worker = threading.local()


def _default_threads():
    for var in ("CAFFELITE_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return max(1, int(value.split(",")[0]))
            except ValueError:
                raise ValueError(f"environment variable {var}={value!r} is not a positive "
                                 f"integer") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                     # not Linux
        return max(1, os.cpu_count() or 1)


def num_threads():
    """Threads host-side kernels use (the caller's thread included)."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"]


def set_num_threads(n):
    """Use ``n`` threads for host-side kernels from now on (1: no pool)."""
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    with _lock:
        old = _state["pool"]
        _state["threads"], _state["pool"] = n, None
    if old is not None:
        old.shutdown(wait=True)


def _pool():
    with _lock:
        if _state["pool"] is None:
            _state["pool"] = ThreadPoolExecutor(num_threads() - 1,
                                                thread_name_prefix="caffelite-kernel",
                                                initializer=_mark_worker)
        return _state["pool"]


def _mark_worker():
    _worker.inside = True


def _forget_pool_after_fork():
    # a forked child has none of the parent's threads: the pool it inherits would never run
    # a piece, so the child starts its own on first use
    _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def pieces(n, elements, xp=np):
    """How many pieces to cut ``n`` independent items (``elements`` values in all) into."""
    if xp is not np or n < 2 or getattr(_worker, "inside", False):
        return 1
    return max(1, min(num_threads(), n, elements // MIN_ELEMENTS))


def split(n, parts):
    """``parts`` contiguous slices covering range(n), sizes differing by at most one."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + base + (i < extra)
        out.append(slice(start, stop))
        start = stop
    return out


def for_slices(n, fn, elements, xp=np):
    """Call ``fn(slice)`` for contiguous slices covering range(n), concurrently when the
    work (``elements`` values over the n items) is large enough. ``fn`` must touch only
    its own items. The caller's thread takes the first slice; exceptions propagate."""
    parts = pieces(n, elements, xp)
    if parts == 1:
        fn(slice(0, n))
        return
    slices = split(n, parts)
    futures = [_pool().submit(fn, s) for s in slices[1:]]
    try:
        fn(slices[0])
    finally:
        for f in futures:
            f.result()


def _split_axis(shape):
    """The leading axis (of the first three) with the most entries: the one to cut."""
    best = 0
    for ax in range(min(3, len(shape))):
        if shape[ax] > shape[best]:
            best = ax
    return best


def copy(dst, src):
    """dst[...] = src (src broadcastable to dst), split over an axis of dst."""
    if not isinstance(dst, np.ndarray) or dst.ndim == 0:
        dst[...] = src
        return
    if src.ndim != dst.ndim:
        src = np.broadcast_to(src, dst.shape)
    ax = _split_axis(dst.shape)
    lead = (slice(None),) * ax

    def piece(s):
        key = lead + (s,)
        dst[key] = src[key]
    for_slices(dst.shape[ax], piece, dst.size)


def ufunc(f, *operands, out):
    """f(*operands, out=out), split over the first axis of out. Operands of out's number of
    axes are cut with it; scalars and operands that broadcast along that axis (fewer axes,
    or length 1 there) go whole to every piece."""
    if not isinstance(out, np.ndarray) or out.ndim == 0:
        f(*operands, out=out)
        return
    n = out.shape[0]

    def cut(o, s):
        if isinstance(o, np.ndarray) and o.ndim == out.ndim and o.shape[0] == n:
            return o[s]
        return o

    def piece(s):
        f(*(cut(o, s) for o in operands), out=out[s])
    for_slices(out.shape[0], piece, out.size)
