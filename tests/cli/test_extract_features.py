"""caffelite extract_features: chosen blobs of a trained net, item by item, into float Datums
(LMDB, keys %010d) or .npy arrays."""
import re

import numpy as np
import pytest
from PIL import Image

import caffelite as caffe
import caffelite.cli.convert_imageset  # noqa: F401  (registers the commands)
import caffelite.cli.extract_features  # noqa: F401
from caffelite.cli.main import main
from caffelite.data.lmdb_source import LMDBSource
from caffelite.proto import caffe_pb2

NET = """name: "feat"
layer { name: "data" type: "Data" top: "data" top: "label"
  include { phase: TEST }
  transform_param { scale: 0.00390625 }
  data_param { source: "%s" batch_size: 2 backend: LMDB } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 }
                        bias_filler { type: "constant" value: 0.5 } } }
layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }
"""


def read_db(path):
    out = []
    with LMDBSource(str(path)).env.begin() as txn:
        for key, value in txn.cursor():
            d = caffe_pb2.Datum()
            d.ParseFromString(value)
            out.append((key.decode(), d))
    return out


@pytest.fixture
def trained(tmp_path, capfd):
    """An LMDB of five 4×4 images, a net reading it, and trained weights for the net."""
    rng = np.random.RandomState(5)
    for i in range(5):
        Image.fromarray(rng.randint(0, 256, (4, 4, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "list.txt").write_text("".join(f"{i}.png {i}\n" for i in range(5)))
    assert main(["convert_imageset", f"{tmp_path}/", str(tmp_path / "list.txt"),
                 str(tmp_path / "images")]) == 0
    (tmp_path / "net.prototxt").write_text(NET % (tmp_path / "images"))
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    net.params["fc"][0].data[...] = rng.randn(*net.params["fc"][0].data.shape)
    net.save(str(tmp_path / "w.caffemodel"))
    capfd.readouterr()
    return tmp_path


def reference(tmp, blobs, batches):
    """What the net's blobs hold after each of ``batches`` forwards, stacked."""
    net = caffe.Net(str(tmp / "net.prototxt"), str(tmp / "w.caffemodel"), caffe.TEST)
    out = {b: [] for b in blobs}
    for _ in range(batches):
        net.forward()
        for b in blobs:
            out[b].append(np.array(net.blobs[b].data))
    return {b: np.concatenate(v) for b, v in out.items()}


def run(capfd, *argv):
    code = main(["extract_features", *argv])
    out, err = capfd.readouterr()
    return code, out + err


def test_lmdb_and_npy_outputs_equal_the_blobs(trained, capfd):
    tmp = trained
    code, log = run(capfd, str(tmp / "w.caffemodel"), str(tmp / "net.prototxt"), "fc,pool,data",
                    f"{tmp}/fc_db,{tmp}/pool.npy,{tmp}/data_db", "3", "lmdb", "CPU")
    assert code == 0, log
    assert "Extracted features of 6 query images for feature blob fc" in log
    assert re.search(r"^E\d{4} .*\] Successfully extracted the features!$", log, re.M)
    ref = reference(tmp, ["fc", "pool", "data"], 3)  # 3 batches of 2: wraps around the 5 images
    assert ref["fc"].shape == (6, 3) and ref["pool"].shape == (6, 3, 2, 2)
    assert (ref["fc"] > 0).any() and not np.array_equal(ref["fc"][0], ref["fc"][1])

    fc = read_db(tmp / "fc_db")
    assert [k for k, _ in fc] == [f"{i:010d}" for i in range(6)]
    for (_, d), want in zip(fc, ref["fc"]):
        assert (d.channels, d.height, d.width) == (3, 1, 1)
        assert not d.HasField("label") and not d.HasField("data") and not d.HasField("encoded")
        np.testing.assert_array_equal(np.array(d.float_data, np.float32), want)
    data = read_db(tmp / "data_db")
    assert len(data) == 6
    for (_, d), want in zip(data, ref["data"]):
        assert (d.channels, d.height, d.width) == (3, 4, 4)
        np.testing.assert_array_equal(np.array(d.float_data, np.float32).reshape(3, 4, 4), want)
    pool = np.load(tmp / "pool.npy")
    assert pool.dtype == np.float32 and pool.shape == (6, 3, 2, 2)
    np.testing.assert_array_equal(pool, ref["pool"])
    assert not list(tmp.glob("*.partial.npy"))


def test_unknown_blob_is_named_and_nothing_is_written(trained, capfd):
    tmp = trained
    code, log = run(capfd, str(tmp / "w.caffemodel"), str(tmp / "net.prototxt"), "fc,conv9",
                    f"{tmp}/a,{tmp}/b", "1", "lmdb")
    assert code == 1 and "'conv9'" in log and "net.prototxt" in log
    assert not (tmp / "a").exists() and not (tmp / "b").exists()


def test_bad_arguments(trained, capfd):
    tmp = trained
    w, m = str(tmp / "w.caffemodel"), str(tmp / "net.prototxt")
    code, log = run(capfd, w, m, "fc,pool", f"{tmp}/a", "1", "lmdb")
    assert code == 1 and "must be equal" in log
    code, log = run(capfd, w, m, "fc", f"{tmp}/a", "1", "leveldb")
    assert code == 1 and "LMDB only" in log
    code, log = run(capfd, w, m, "fc", f"{tmp}/a", "x", "lmdb")
    assert code == 1 and "num_mini_batches" in log
    code, log = run(capfd, w, m, "fc", f"{tmp}/a", "0", "lmdb")
    assert code == 1 and "positive" in log
    code, log = run(capfd, w, m, "fc", f"{tmp}/a", "1", "lmdb", "TPU")
    assert code == 1 and "CPU or GPU" in log
    code, log = run(capfd, w, m, "fc")
    assert code == 1 and "usage" in log
    (tmp / "taken").mkdir()
    code, log = run(capfd, w, m, "fc", f"{tmp}/taken", "1", "lmdb")
    assert code == 1 and "already exists" in log
    code, log = run(capfd, str(tmp / "none.caffemodel"), m, "fc", f"{tmp}/a", "1", "lmdb")
    assert code == 1 and "none.caffemodel" in log
    assert not (tmp / "a").exists()
