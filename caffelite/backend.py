"""Array-module selection and global mode state.

This is the only module that imports CuPy. Layers never branch on the mode: they call
``get_array_module(bottom[0].data)`` and write one code path against the returned ``xp``.
"""
import numpy as np

try:  # CuPy is optional (the ``gpu`` extra)
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA runtime that fails to load
    _cupy = None

CPU, GPU = 0, 1
_state = {"mode": CPU, "device": 0, "rng": np.random.default_rng()}


def gpu_available():
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def set_mode_cpu():
    _state["mode"] = CPU


def set_mode_gpu():
    if not gpu_available():
        from .errors import CaffeliteError
        raise CaffeliteError("set_mode_gpu: CuPy with a usable CUDA device is required "
                             "(pip install 'caffelite[gpu]')")
    _state["mode"] = GPU
    _cupy.cuda.Device(_state["device"]).use()


def set_device(device_id):
    _state["device"] = int(device_id)
    if _state["mode"] == GPU:
        _cupy.cuda.Device(_state["device"]).use()


def mode():
    return _state["mode"]


def xp_for_mode():
    """The array module new blobs are allocated with."""
    return _cupy if _state["mode"] == GPU else np


def get_array_module(x):
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def asnumpy(x):
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def to_device(x, xp):
    """Move a host array to the array module ``xp`` (a no-op for NumPy)."""
    if xp is np:
        return asnumpy(x)
    return xp.asarray(x)


def set_random_seed(seed):
    """Seed every random stream caffelite uses (fillers, dropout, data shuffling)."""
    _state["rng"] = np.random.default_rng(int(seed))
    if _cupy is not None and gpu_available():
        _cupy.random.seed(int(seed) % (2 ** 32))


def rng():
    """The host random generator; device-side randomness is drawn from it too."""
    return _state["rng"]


def scatter_add(xp, target, indices, values):
    """target[indices] += values with repeated indices accumulated (np.add.at / cupyx)."""
    if xp is np:
        np.add.at(target, indices, values)
    else:
        import cupyx
        cupyx.scatter_add(target, indices, values)


_AXPY_BLOCK = 1 << 20


def axpy(a, x, y):
    """y += a * x, a block at a time, so a parameter-sized temporary is never allocated."""
    xf, yf = x.reshape(-1), y.reshape(-1)
    xp = get_array_module(y)
    if yf.size <= _AXPY_BLOCK:
        yf += a * xf
        return
    tmp = xp.empty(_AXPY_BLOCK, dtype=y.dtype)
    for start in range(0, yf.size, _AXPY_BLOCK):
        stop = min(start + _AXPY_BLOCK, yf.size)
        t = tmp[:stop - start]
        xp.multiply(xf[start:stop], a, out=t)
        yf[start:stop] += t
