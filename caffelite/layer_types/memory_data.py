"""MemoryData: batches cut from arrays held in memory (pycaffe's ``net.set_input_arrays``)."""
import logging

import numpy as np

from .. import backend
from ..errors import CaffeliteError
from ..layer import Layer, register_layer

log = logging.getLogger("caffelite")


@register_layer("MemoryData", v1="MEMORY_DATA")
class MemoryDataLayer(Layer):
    """no bottoms -> data (batch, C, H, W), label (batch,) at setup, (batch, 1, 1, 1) after
    the first Forward (Caffe reshapes the label top there).

    ``reset(data, labels, n)`` hands over N x C x H x W float32 data and N labels (no
    transformation; N a multiple of batch_size). Each Forward copies the next batch_size
    rows and advances, cycling: pos = (pos + batch_size) % N. The arrays are referenced,
    not copied, so later changes to them are seen by later Forwards.
    ``add_datum_vector(datums)`` and ``add_mat_vector(images, labels)`` instead run the
    transformer (transform_param) over Datums or H x W x C images.
    Params: memory_data_param {batch_size, channels, height, width}, transform_param."""
    exact_num_bottom = 0
    exact_num_top = 2

    def setup(self, bottom, top):
        p = self.layer_param.memory_data_param
        self.batch_size, self.channels = int(p.batch_size), int(p.channels)
        self.height, self.width = int(p.height), int(p.width)
        if min(self.batch_size, self.channels, self.height, self.width) <= 0:
            raise self.error("memory_data_param: batch_size, channels, height and width must "
                             "all be set and positive")
        top[0].reshape(self.batch_size, self.channels, self.height, self.width)
        top[1].reshape(self.batch_size)
        self._data = self._labels = None
        self._n = self._pos = 0
        self._transformer = None

    @property
    def transformer(self):
        if self._transformer is None:
            from ..data.transformer import DataTransformer
            self._transformer = DataTransformer(self.layer_param.transform_param,
                                                self.phase, self.error)
        return self._transformer

    def reset(self, data, labels, n):
        """Caffe's Reset: serve ``data``/``labels`` (first n rows), no transformation."""
        n = int(n)
        if n <= 0 or n % self.batch_size:
            raise self.error(f"the number of rows ({n}) must be a positive multiple of "
                             f"memory_data_param.batch_size ({self.batch_size})")
        if self.layer_param.HasField("transform_param"):
            log.warning("MemoryData layer '%s' does not transform array data on Reset "
                        "(set_input_arrays)", self.name)
        self._data, self._labels = data, labels
        self._n, self._pos = n, 0

    def set_batch_size(self, batch_size):
        if batch_size <= 0:
            raise self.error(f"batch size must be positive, got {batch_size}")
        self.batch_size = int(batch_size)

    def add_datum_vector(self, datums):
        """Transform Datums (raw or encoded) into the served arrays; labels from the Datums."""
        from ..data.lmdb_source import DataError, datum_array
        try:
            arrays = [datum_array(d, f"#{i}".encode(), self.transformer.decode_color)
                      for i, d in enumerate(datums)]
        except DataError as e:
            raise self.error(str(e)) from None
        self._add(arrays, [d.label for d in datums], "Datum")

    def add_mat_vector(self, images, labels):
        """Transform H x W x C images (BGR, as OpenCV gives them) with their labels."""
        arrays = [np.ascontiguousarray(np.asarray(im).reshape(np.shape(im)[:2] + (-1,))
                                       .transpose(2, 0, 1)) for im in images]
        if len(arrays) != len(labels):
            raise self.error(f"add_mat_vector got {len(arrays)} images but {len(labels)} "
                             f"labels")
        self._add(arrays, labels, "image")

    def _add(self, arrays, labels, kind):
        if not arrays:
            raise self.error(f"there is no {kind} to add")
        data = self.transformer.transform_list(arrays, [f"{kind} #{i}" for i in
                                                        range(len(arrays))])
        if data.shape[1:] != (self.channels, self.height, self.width):
            raise self.error(f"transformed {kind}s are {data.shape[1:]} but "
                             f"memory_data_param says {(self.channels, self.height, self.width)}")
        self.reset(data, np.asarray(labels, dtype=np.float32), len(arrays))

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        if self._data is None:
            raise self.error("has no data: call net.set_input_arrays(data, labels) (Caffe's "
                             "Reset) before Forward")
        b, pos = self.batch_size, self._pos
        top[0].reshape(b, self.channels, self.height, self.width)
        top[1].reshape(b, 1, 1, 1)
        rows = np.arange(pos, pos + b) % self._n
        data = np.asarray(self._data).reshape(-1, self.channels, self.height, self.width)
        labels = np.asarray(self._labels).reshape(-1)
        if pos + b <= self._n:
            d, l = data[pos:pos + b], labels[pos:pos + b]
        else:  # only after set_batch_size; Caffe would read past the end, we wrap
            d, l = data[rows], labels[rows]
        xp = backend.get_array_module(top[0].data)
        top[0].data[...] = backend.to_device(d, xp)
        top[1].data[...] = backend.to_device(l.reshape(b, 1, 1, 1), xp)
        self._pos = (pos + b) % self._n

    def backward(self, top, propagate_down, bottom):
        pass


def _check_array(arr, what, dims, error):
    if not isinstance(arr, np.ndarray):
        raise error(f"set_input_arrays: the {what} must be a NumPy array, got "
                    f"{type(arr).__name__}")
    if not arr.flags["C_CONTIGUOUS"]:
        raise error(f"set_input_arrays: the {what} must be C contiguous")
    if arr.ndim != 4:
        raise error(f"set_input_arrays: the {what} must be 4-d, got shape {arr.shape}")
    if arr.dtype != np.float32:
        raise error(f"set_input_arrays: the {what} must be float32, got {arr.dtype}")
    if arr.shape[1:] != dims:
        raise error(f"set_input_arrays: the {what} has shape {arr.shape}; its dimensions "
                    f"after the first must be {dims}")


def set_input_arrays(net, data, labels):
    """pycaffe's Net.set_input_arrays: feed the net's first layer, which must be MemoryData.

    data: float32, C-contiguous N x C x H x W with the layer's C, H, W; labels: float32,
    N values (1-D labels become N x 1 x 1 x 1). N must be a multiple of the batch size.
    The arrays are referenced, not copied."""
    layer = net.layers[0] if net.layers else None
    if not isinstance(layer, MemoryDataLayer):
        raise CaffeliteError("set_input_arrays may only be called if the first layer is a "
                             "MemoryData layer")
    labels = np.asarray(labels) if not isinstance(labels, np.ndarray) else labels
    if labels.ndim == 1:
        labels = np.ascontiguousarray(labels[:, None, None, None])
    _check_array(data, "data array", (layer.channels, layer.height, layer.width), layer.error)
    _check_array(labels, "labels array", (1, 1, 1), layer.error)
    if data.shape[0] != labels.shape[0]:
        raise layer.error(f"set_input_arrays: data and labels must have the same first "
                          f"dimension, got {data.shape[0]} and {labels.shape[0]}")
    if data.shape[0] % layer.batch_size:
        raise layer.error(f"set_input_arrays: the first dimension of the input arrays "
                          f"({data.shape[0]}) must be a multiple of the batch size "
                          f"({layer.batch_size})")
    layer.reset(data, labels, data.shape[0])
