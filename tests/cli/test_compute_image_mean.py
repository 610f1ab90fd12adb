"""caffelite compute_image_mean: the mean Datum of an LMDB as a legacy-dims BlobProto."""
import re

import lmdb
import numpy as np
import pytest
from PIL import Image

import caffelite.cli.compute_image_mean  # noqa: F401  (registers the command)
import caffelite.cli.convert_imageset  # noqa: F401
from caffelite.cli.main import main
from caffelite.io import array_to_datum, load_mean_file
from caffelite.log import g6
from caffelite.proto import caffe_pb2

N = 5


@pytest.fixture
def image_set(tmp_path):
    rng = np.random.RandomState(3)
    for i in range(N):
        Image.fromarray(rng.randint(0, 256, (6, 5, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "list.txt").write_text("".join(f"{i}.png {i}\n" for i in range(N)))
    return tmp_path


def run(capfd, *argv):
    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out + err


def pixels(tmp_path):
    """The images as Caffe stores them: B, G, R planes, C×H×W."""
    return [np.asarray(Image.open(tmp_path / f"{i}.png"))[:, :, ::-1].transpose(2, 0, 1)
            for i in range(N)]


def caffe_mean(arrays):
    """Caffe's arithmetic: a float32 running sum, then float32 division by the count."""
    total = np.zeros(arrays[0].shape, np.float32)
    for a in arrays:
        total = (total + a.astype(np.float32)).astype(np.float32)
    return total / np.float32(len(arrays))


def test_mean_of_raw_datums(image_set, capfd):
    tmp = image_set
    assert run(capfd, "convert_imageset", f"{tmp}/", str(tmp / "list.txt"), str(tmp / "db"))[0] == 0
    code, log = run(capfd, "compute_image_mean", str(tmp / "db"), str(tmp / "mean.binaryproto"))
    assert code == 0
    expect = caffe_mean(pixels(tmp))
    np.testing.assert_allclose(expect, np.mean(pixels(tmp), axis=0), rtol=1e-6)
    mean = load_mean_file(str(tmp / "mean.binaryproto"))
    assert mean.shape == (1, 3, 6, 5)
    np.testing.assert_array_equal(mean[0], expect)
    # legacy 4-D dims, no shape message, as Caffe's tool writes it
    bp = caffe_pb2.BlobProto()
    bp.ParseFromString((tmp / "mean.binaryproto").read_bytes())
    assert (bp.num, bp.channels, bp.height, bp.width) == (1, 3, 6, 5)
    assert not bp.HasField("shape")
    assert "Processed 5 files." in log and "Number of channels: 3" in log
    logged = re.findall(r"mean_value channel \[(\d)\]:(\S+)", log)
    assert [c for c, _ in logged] == ["0", "1", "2"]
    for c, v in logged:
        assert v == g6(expect[int(c)].mean())


def test_encoded_datums_are_decoded(image_set, capfd):
    tmp = image_set
    assert run(capfd, "convert_imageset", "--encoded", f"{tmp}/", str(tmp / "list.txt"),
               str(tmp / "enc"))[0] == 0
    code, log = run(capfd, "compute_image_mean", str(tmp / "enc"), str(tmp / "m.binaryproto"))
    assert code == 0 and "Decoding Datum" in log
    np.testing.assert_array_equal(load_mean_file(str(tmp / "m.binaryproto"))[0],
                                  caffe_mean(pixels(tmp)))


def write_datums(path, arrays):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, a in enumerate(arrays):
            txn.put(b"%08d" % i, array_to_datum(a, i).SerializeToString())
    env.close()


def test_float_datums_and_no_output_file(tmp_path, capfd):
    rng = np.random.RandomState(0)
    arrays = [rng.randn(2, 3, 4).astype(np.float32) for _ in range(4)]
    write_datums(tmp_path / "f", arrays)
    code, log = run(capfd, "compute_image_mean", str(tmp_path / "f"))
    assert code == 0 and "Write to" not in log
    expect = caffe_mean(arrays)
    logged = dict(re.findall(r"mean_value channel \[(\d)\]:(\S+)", log))
    assert logged == {"0": g6(expect[0].mean()), "1": g6(expect[1].mean())}


def test_sizes_must_agree(tmp_path, capfd):
    write_datums(tmp_path / "db", [np.zeros((1, 2, 2), np.uint8), np.zeros((1, 3, 2), np.uint8)])
    code, log = run(capfd, "compute_image_mean", str(tmp_path / "db"), str(tmp_path / "m"))
    assert code == 1
    assert "record '00000001'" in log and "1x3x2" in log and "1x2x2" in log
    assert not (tmp_path / "m").exists()


def test_bad_input(tmp_path, capfd):
    code, log = run(capfd, "compute_image_mean", str(tmp_path / "nothing"))
    assert code == 1 and "does not exist" in log
    code, log = run(capfd, "compute_image_mean", "--backend", "leveldb", str(tmp_path / "x"))
    assert code == 1 and "LMDB only" in log
    (tmp_path / "ldb").mkdir()
    (tmp_path / "ldb" / "CURRENT").write_text("MANIFEST-000001\n")
    code, log = run(capfd, "compute_image_mean", str(tmp_path / "ldb"))
    assert code == 1 and "LevelDB" in log
    env = lmdb.open(str(tmp_path / "empty"), map_size=1 << 20)
    env.close()
    code, log = run(capfd, "compute_image_mean", str(tmp_path / "empty"))
    assert code == 1 and "empty" in log
