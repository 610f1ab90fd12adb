"""HDF5Data: rows of HDF5 datasets, one dataset per top, read in order across files."""
import os

import numpy as np

from .. import backend
from ..layer import Layer, register_layer


def _h5py(error):
    try:
        import h5py
    except ImportError:
        raise error("HDF5Data needs h5py: pip install 'caffelite[hdf5]' "
                    "(or pip install h5py)") from None
    return h5py


@register_layer("HDF5Data", v1="HDF5_DATA")
class HDF5DataLayer(Layer):
    """no bottoms -> one top per dataset, named like the top: (batch_size,) + row shape.

    ``source`` is a text file listing .h5 files (whitespace-separated, relative paths taken
    from the working directory, or else from the list file's folder). Each file holds one
    dataset per top, all with the same number of rows (float or integer; read as float32).
    Rows are copied in order; a batch may cross into the next file, and after the last file
    the first comes again. With ``shuffle`` (Caffe's order): the file order is permuted at
    setup and whenever the list wraps, and the rows of a file are permuted when it is
    loaded and whenever its rows run out. Loading is synchronous, as in Caffe.
    transform_param is refused: HDF5 data is generic.
    Params: hdf5_data_param {source, batch_size, shuffle}."""
    exact_num_bottom = 0
    min_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.hdf5_data_param
        if self.layer_param.HasField("transform_param"):
            raise self.error("HDF5Data does not transform data: remove transform_param")
        if p.batch_size <= 0:
            raise self.error("hdf5_data_param.batch_size must be positive")
        self.h5py = _h5py(self.error)
        self.files = self._file_list(p.source)
        self.batch_size = int(p.batch_size)
        self.shuffle = bool(p.shuffle)
        self.rng = (np.random.default_rng(int(backend.rng().integers(0, 2 ** 63)))
                    if self.shuffle else None)
        self.file_order = np.arange(len(self.files))
        if self.shuffle:
            self.rng.shuffle(self.file_order)
        self.current_file = 0
        self.row_shapes = None
        self._load(self.files[self.file_order[0]])
        self.current_row = 0
        for t, arr in zip(top, self.arrays):
            t.reshape((self.batch_size,) + arr.shape[1:])

    def _file_list(self, source):
        if not source:
            raise self.error("hdf5_data_param.source is not set")
        try:
            with open(source, "r", encoding="utf-8") as f:
                names = f.read().split()
        except OSError as e:
            raise self.error(f"hdf5_data_param.source '{source}' cannot be read "
                             f"({e.strerror or e})") from None
        if not names:
            raise self.error(f"hdf5_data_param.source '{source}' lists no HDF5 files")
        here = os.path.dirname(os.path.abspath(source))
        files = []
        for name in names:
            path = os.path.abspath(name)
            if not os.path.exists(path) and os.path.exists(os.path.join(here, name)):
                path = os.path.join(here, name)
            files.append(path)
        return files

    def _load(self, path):
        """Read every top's dataset of one file into memory (as Caffe's LoadHDF5FileData)."""
        names = list(self.layer_param.top)
        try:
            with self.h5py.File(path, "r") as f:
                arrays = []
                for name in names:
                    if name not in f or not isinstance(f[name], self.h5py.Dataset):
                        raise self.error(f"HDF5 file '{path}' has no dataset '{name}' (one "
                                         f"dataset per top, named like the top)")
                    ds = f[name]
                    if ds.dtype.kind not in "fiub" or ds.ndim < 1:
                        raise self.error(f"dataset '{name}' in '{path}' has dtype {ds.dtype} "
                                         f"and shape {ds.shape}; expected numbers with at "
                                         f"least one axis")
                    arrays.append(np.asarray(ds[...], dtype=np.float32))
        except OSError as e:
            raise self.error(f"cannot open HDF5 file '{path}' ({e})") from None
        rows = arrays[0].shape[0]
        for name, arr in zip(names, arrays):
            if arr.shape[0] != rows:
                raise self.error(f"datasets in '{path}' differ in rows: '{names[0]}' has "
                                 f"{rows}, '{name}' has {arr.shape[0]}")
        if rows == 0:
            raise self.error(f"HDF5 file '{path}' has datasets with no rows")
        shapes = [a.shape[1:] for a in arrays]
        if self.row_shapes is not None and shapes != self.row_shapes:
            raise self.error(f"HDF5 file '{path}' has rows of shapes {shapes} but the first "
                             f"file has {self.row_shapes}")
        self.row_shapes = shapes
        self.arrays = arrays
        self.rows = np.arange(rows)
        if self.shuffle:
            self.rng.shuffle(self.rows)

    def _advance_file(self):
        """The rows of the current file ran out (Caffe's Next at the end of a file)."""
        if len(self.files) > 1:
            self.current_file += 1
            if self.current_file == len(self.files):
                self.current_file = 0
                if self.shuffle:
                    self.rng.shuffle(self.file_order)
            self._load(self.files[self.file_order[self.current_file]])
        self.current_row = 0
        if self.shuffle:
            self.rng.shuffle(self.rows)

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        out = [np.empty((self.batch_size,) + a.shape[1:], dtype=np.float32)
               for a in self.arrays]
        filled = 0
        while filled < self.batch_size:
            take = min(self.batch_size - filled, len(self.rows) - self.current_row)
            idx = self.rows[self.current_row:self.current_row + take]
            for o, a in zip(out, self.arrays):
                o[filled:filled + take] = a[idx]
            filled += take
            self.current_row += take
            if self.current_row == len(self.rows):
                self._advance_file()
        for t, o in zip(top, out):
            t.reshape(o.shape)
            t.data[...] = backend.to_device(o, backend.get_array_module(t.data))

    def backward(self, top, propagate_down, bottom):
        pass
