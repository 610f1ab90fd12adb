"""HDF5Output: writes its two bottoms to datasets 'data' and 'label' of an HDF5 file."""
import os

import numpy as np

from .. import backend
from ..layer import Layer, register_layer


@register_layer("HDF5Output", v1="HDF5_OUTPUT")
class HDF5OutputLayer(Layer):
    """bottoms data, label (same first dimension) -> no tops.

    The file is created (truncated) at setup; every Forward replaces its datasets 'data'
    and 'label' with the bottoms, written as float32 with Caffe's legacy 4-D shape
    (num, channels, height, width), so an (N, D) bottom is stored as (N, D, 1, 1). The file
    is closed after each write, so it can be read while the net lives. No backward.
    Params: hdf5_output_param.file_name."""
    exact_num_bottom = 2
    exact_num_top = 0

    def setup(self, bottom, top):
        from .hdf5_data import _h5py
        self.h5py = _h5py(self.error)
        name = self.layer_param.hdf5_output_param.file_name
        if not name:
            raise self.error("hdf5_output_param.file_name is not set")
        self.file_name = os.path.abspath(name)
        try:
            with self.h5py.File(self.file_name, "w"):
                pass
        except OSError as e:
            raise self.error(f"cannot create HDF5 file '{self.file_name}' ({e})") from None

    def reshape(self, bottom, top):
        for name, b in (("data", bottom[0]), ("label", bottom[1])):
            if b.num_axes > 4:
                raise self.error(f"the {name} bottom has shape {b.shape}; HDF5Output writes "
                                 f"blobs of at most 4 axes")
        if bottom[0].num != bottom[1].num:
            raise self.error(f"data and label must have the same batch size: bottom shapes "
                             f"{bottom[0].shape} and {bottom[1].shape}")

    def forward(self, bottom, top):
        arrays = {}
        for name, b in (("data", bottom[0]), ("label", bottom[1])):
            legacy = (b.num, b.channels, b.height, b.width)
            arrays[name] = backend.asnumpy(b.data).astype(np.float32).reshape(legacy)
        try:
            with self.h5py.File(self.file_name, "a") as f:
                for name, arr in arrays.items():
                    if name in f:
                        del f[name]
                    f.create_dataset(name, data=arr)
        except OSError as e:
            raise self.error(f"cannot write HDF5 file '{self.file_name}' ({e})") from None

    def backward(self, top, propagate_down, bottom):
        pass
