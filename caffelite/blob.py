"""Blob: an N-D array of data with a matching array of gradients (diff), as in Caffe."""
import numpy as np

from . import backend
from .errors import CaffeliteError

MAX_AXES = 32


def canonical_axis(axis, num_axes, what="axis"):
    """Caffe's CanonicalAxisIndex: negative axes count from the end."""
    if not -num_axes <= axis < max(num_axes, 1):
        raise CaffeliteError(f"{what} {axis} out of range for a blob with {num_axes} axes")
    return axis + num_axes if axis < 0 else axis


class Blob:
    """data and diff share a shape; both are views into flat buffers that only grow.

    As in Caffe, reshaping to a smaller count keeps the buffers, so views handed out before
    stay valid; reshaping to a larger count allocates new zeroed buffers.
    """

    def __init__(self, shape=(), dtype=np.float32, xp=None):
        self.dtype = np.dtype(dtype)
        self.xp = xp if xp is not None else backend.xp_for_mode()
        self._data_buf = self.xp.zeros(0, dtype=self.dtype)
        self._diff_buf = self.xp.zeros(0, dtype=self.dtype)
        self._shape = None
        self.reshape(*shape) if not isinstance(shape, int) else self.reshape(shape)

    # -- shape ------------------------------------------------------------------------------
    def reshape(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(int(d) for d in shape)
        if shape == self._shape:              # every layer reshapes its tops on each forward
            return
        if len(shape) > MAX_AXES:
            raise CaffeliteError(f"blob shape {shape} has more than {MAX_AXES} axes")
        if any(d < 0 for d in shape):
            raise CaffeliteError(f"blob shape {shape} has a negative dimension")
        count = int(np.prod(shape, dtype=np.int64))
        if count > self._data_buf.size:
            self._data_buf = self.xp.zeros(count, dtype=self.dtype)
            self._diff_buf = self.xp.zeros(count, dtype=self.dtype)
        self._shape = shape
        self._count = count
        self._refresh_views()

    def reshape_like(self, other):
        self.reshape(other.shape)

    def _refresh_views(self):
        count = self.count
        self._data = self._data_buf[:count].reshape(self._shape)
        self._diff = self._diff_buf[:count].reshape(self._shape)

    @property
    def shape(self):
        return self._shape

    @property
    def count(self):
        return self._count

    def count_range(self, start, end=None):
        return int(np.prod(self._shape[start:end], dtype=np.int64))

    @property
    def num_axes(self):
        return len(self._shape)

    def canonical_axis(self, axis):
        return canonical_axis(axis, self.num_axes)

    def _legacy(self, i):
        return self._shape[i] if len(self._shape) > i else 1

    num = property(lambda self: self._legacy(0))
    channels = property(lambda self: self._legacy(1))
    height = property(lambda self: self._legacy(2))
    width = property(lambda self: self._legacy(3))

    # -- arrays -----------------------------------------------------------------------------
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        self._data[...] = backend.to_device(value, self.xp)

    @property
    def diff(self):
        return self._diff

    @diff.setter
    def diff(self, value):
        self._diff[...] = backend.to_device(value, self.xp)

    # pycaffe's device addresses of data and diff (ints), for handing the memory to CUDA code
    @property
    def _gpu_data_ptr(self):
        return self._device_address(self._data)

    @property
    def _gpu_diff_ptr(self):
        return self._device_address(self._diff)

    def _device_address(self, array):
        if self.xp is np:
            raise CaffeliteError("this blob lives in host memory (it was made in CPU mode): "
                                 "it has no GPU pointer; call caffe.set_mode_gpu() before "
                                 "building the net")
        return int(array.data.ptr)

    def share_data(self, other):
        """Use other's data memory (sizes must agree), as Caffe's ShareData."""
        if other.count != self.count:
            raise CaffeliteError(f"cannot share data of a blob of count {other.count} "
                                 f"with one of count {self.count}")
        self._data_buf = other._data_buf
        self.xp, self.dtype = other.xp, other.dtype
        self._refresh_views()

    def share_diff(self, other):
        if other.count != self.count:
            raise CaffeliteError(f"cannot share diff of a blob of count {other.count} "
                                 f"with one of count {self.count}")
        self._diff_buf = other._diff_buf
        self.xp, self.dtype = other.xp, other.dtype
        self._refresh_views()

    def shares_memory_with(self, other):
        return self._data_buf is other._data_buf

    def to(self, xp):
        """Move both buffers to array module xp (keeps the shape)."""
        if xp is self.xp:
            return
        self._data_buf = backend.to_device(self._data_buf, xp)
        self._diff_buf = backend.to_device(self._diff_buf, xp)
        self.xp = xp
        self._refresh_views()

    def update(self):
        """Caffe's Blob::Update: data -= diff."""
        self._data -= self._diff

    def __repr__(self):
        return f"Blob(shape={self._shape}, dtype={self.dtype.name})"
