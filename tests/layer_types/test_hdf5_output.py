"""HDF5Output: writes its bottoms to datasets 'data' and 'label' (legacy 4-D), replaced at
every Forward; batch sizes must agree."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import LayerError
from caffelite.proto import caffe_pb2

h5py = pytest.importorskip("h5py")


def output_net(path, data_shape=(3, 2, 2, 2), label_shape=(3,)):
    def dims(s):
        return " ".join(f"dim: {d}" for d in s)
    text = (f'layer {{ name: "in" type: "Input" top: "x" top: "y" input_param {{ '
            f'shape {{ {dims(data_shape)} }} shape {{ {dims(label_shape)} }} }} }} '
            f'layer {{ name: "out" type: "HDF5Output" bottom: "x" bottom: "y" '
            f'hdf5_output_param {{ file_name: "{path}" }} }}')
    return caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), caffe.TEST)


def read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in f}


def test_writes_data_and_label_and_replaces_them_each_forward(tmp_path):
    path = tmp_path / "out.h5"
    net = output_net(path)
    assert read(path) == {}                               # created (truncated) at setup
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
        y = np.array([1, 0, 2], np.float32)
        net.forward(x=x, y=y)
        stored = read(path)
        assert set(stored) == {"data", "label"}
        np.testing.assert_array_equal(stored["data"], x)
        np.testing.assert_array_equal(stored["label"], y.reshape(3, 1, 1, 1))
        assert stored["data"].dtype == np.float32


def test_two_dimensional_bottom_stored_with_legacy_dims(tmp_path):
    path = tmp_path / "flat.h5"
    net = output_net(path, (2, 5), (2, 1))
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    net.forward(x=x, y=np.array([[3], [4]], np.float32))
    stored = read(path)
    assert stored["data"].shape == (2, 5, 1, 1) and stored["label"].shape == (2, 1, 1, 1)
    np.testing.assert_array_equal(stored["data"][:, :, 0, 0], x)


def test_existing_file_is_truncated(tmp_path):
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:
        f["stale"] = np.zeros(2)
    output_net(path)
    assert read(path) == {}


def test_errors(tmp_path):
    with pytest.raises(LayerError, match=r"'out' \(type HDF5Output\).*same batch size"):
        output_net(tmp_path / "a.h5", (3, 2), (4,))
    with pytest.raises(LayerError, match="cannot create HDF5 file"):
        output_net(tmp_path / "no" / "dir" / "a.h5")
    with pytest.raises(LayerError, match="file_name is not set"):
        output_net("")
