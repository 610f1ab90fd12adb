"""HDF5Data: rows in order across files with wrap-around, Caffe's shuffle order, N-D and
integer datasets, errors; replays the hdf5_two_files fixture."""
import sys

import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import LayerError
from caffelite.proto import caffe_pb2
from caffelite.testing.data_fixtures import replay_data_case

h5py = pytest.importorskip("h5py")


def hdf5_net(source, batch, tops=("data", "label"), extra="", layer_extra=""):
    top = " ".join(f'top: "{t}"' for t in tops)
    text = (f'layer {{ name: "h5" type: "HDF5Data" {top} {layer_extra} '
            f'hdf5_data_param {{ source: "{source}" batch_size: {batch} {extra} }} }}')
    return caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), caffe.TEST)


@pytest.fixture
def files(tmp_path):
    """Three files of 4, 2 and 3 rows; data row r of all rows is filled with r."""
    start, listed = 0, []
    for i, rows in enumerate([4, 2, 3]):
        ids = np.arange(start, start + rows)
        with h5py.File(tmp_path / f"f{i}.h5", "w") as f:
            f["data"] = np.broadcast_to(ids[:, None, None], (rows, 2, 3)).astype(np.float64)
            f["label"] = ids.astype(np.int32)
        listed.append(f"f{i}.h5")
        start += rows
    (tmp_path / "list.txt").write_text("\n".join(listed) + "\n")
    return tmp_path


def read_ids(net, passes):
    out = []
    for _ in range(passes):
        net.forward()
        labels = net.blobs["label"].data.copy()
        np.testing.assert_array_equal(net.blobs["data"].data[:, 0, 0], labels)
        out.extend(int(v) for v in labels)
    return out


def test_rows_in_order_across_files_and_wrap(files):
    net = hdf5_net(files / "list.txt", 4)
    assert net.blobs["data"].shape == (4, 2, 3) and net.blobs["label"].shape == (4,)
    assert net.blobs["data"].data.dtype == np.float32
    assert read_ids(net, 5) == [i % 9 for i in range(20)]


def test_paths_relative_to_working_directory(files, monkeypatch):
    monkeypatch.chdir(files)
    net = hdf5_net("list.txt", 9)
    assert read_ids(net, 1) == list(range(9))


def test_shuffle_permutes_files_and_rows_without_interleaving(files):
    def run():
        caffe.set_random_seed(8)
        return read_ids(hdf5_net(files / "list.txt", 3, extra="shuffle: true"), 12)

    ids = run()
    assert ids == run()                                  # seeded
    groups = [set(range(0, 4)), set(range(4, 6)), set(range(6, 9))]
    epochs = [ids[i:i + 9] for i in range(0, 36, 9)]
    orders = set()
    for epoch in epochs:
        assert sorted(epoch) == list(range(9))
        blocks, pos = [], 0                              # each file's rows are contiguous
        while pos < 9:
            g = next(g for g in groups if epoch[pos] in g)
            assert set(epoch[pos:pos + len(g)]) == g
            blocks.append(min(g))
            pos += len(g)
        orders.add(tuple(epoch))
    assert len(orders) > 1                               # reshuffled at each wrap


def test_single_file_rows_reshuffled_at_each_wrap(tmp_path):
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f["x"] = np.arange(6, dtype=np.float32)
    (tmp_path / "list.txt").write_text(str(tmp_path / "one.h5"))
    caffe.set_random_seed(2)
    net = hdf5_net(tmp_path / "list.txt", 6, tops=("x",), extra="shuffle: true")
    epochs = []
    for _ in range(4):
        net.forward()
        epochs.append(tuple(net.blobs["x"].data.astype(int)))
    assert all(sorted(e) == list(range(6)) for e in epochs) and len(set(epochs)) > 1


def test_one_top_per_dataset_any_rank(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["a"] = np.arange(24, dtype=np.float32).reshape(3, 2, 2, 2)
        f["b"] = np.arange(3, dtype=np.uint8)
        f["c"] = np.arange(6, dtype=np.float64).reshape(3, 2)
    (tmp_path / "l.txt").write_text("a.h5")
    net = hdf5_net(tmp_path / "l.txt", 2, tops=("a", "b", "c"))
    assert [net.blobs[t].shape for t in "abc"] == [(2, 2, 2, 2), (2,), (2, 2)]
    net.forward()
    net.forward()
    np.testing.assert_array_equal(net.blobs["a"].data[0], np.arange(16, 24).reshape(2, 2, 2))
    np.testing.assert_array_equal(net.blobs["b"].data, [2, 0])
    np.testing.assert_array_equal(net.blobs["c"].data, [[4, 5], [0, 1]])


def test_errors(files, tmp_path):
    with pytest.raises(LayerError, match="does not transform"):
        hdf5_net(files / "list.txt", 2, layer_extra="transform_param { scale: 2 }")
    with pytest.raises(LayerError, match="batch_size must be positive"):
        hdf5_net(files / "list.txt", 0)
    with pytest.raises(LayerError, match=r"'h5' \(type HDF5Data\).*no dataset 'other'"):
        hdf5_net(files / "list.txt", 2, tops=("data", "other"))
    with pytest.raises(LayerError, match="cannot be read"):
        hdf5_net(tmp_path / "nolist.txt", 2)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(LayerError, match="lists no HDF5 files"):
        hdf5_net(tmp_path / "empty.txt", 2)
    with h5py.File(tmp_path / "uneven.h5", "w") as f:
        f["data"] = np.zeros((3, 2))
        f["label"] = np.zeros(4)
    (tmp_path / "uneven.txt").write_text("uneven.h5")
    with pytest.raises(LayerError, match="differ in rows.*'data' has 3, 'label' has 4"):
        hdf5_net(tmp_path / "uneven.txt", 2)
    (tmp_path / "missing.txt").write_text("nowhere.h5")
    with pytest.raises(LayerError, match="cannot open HDF5 file"):
        hdf5_net(tmp_path / "missing.txt", 2)


def test_later_file_with_other_row_shape_is_refused(tmp_path):
    for name, shape in (("a.h5", (2, 3)), ("b.h5", (2, 4))):
        with h5py.File(tmp_path / name, "w") as f:
            f["data"] = np.zeros(shape)
    (tmp_path / "l.txt").write_text("a.h5 b.h5")
    net = hdf5_net(tmp_path / "l.txt", 2, tops=("data",))
    with pytest.raises(LayerError, match="b.h5' has rows of shapes"):
        net.forward()


def test_replay_hdf5_two_files_fixture(fixtures_dir):
    replay_data_case(fixtures_dir / "data" / "hdf5_two_files")


def test_missing_h5py_gives_a_clear_error(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)      # import h5py now raises ImportError
    with pytest.raises(LayerError, match=r"HDF5Data needs h5py: pip install"):
        hdf5_net(files / "list.txt", 2)
