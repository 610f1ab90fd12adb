"""caffelite convert_imageset: list file -> LMDB of raw or encoded Datums, as Caffe's tool."""
import io
import os

import numpy as np
import pytest
from PIL import Image

import caffelite.cli.convert_imageset as convert_imageset  # registers the command
from caffelite.cli.main import main
from caffelite.data.lmdb_source import LMDBSource
from caffelite.proto import caffe_pb2


def read_db(path):
    """[(key, Datum)] in key order (through caffelite's shared read handle)."""
    out = []
    with LMDBSource(str(path)).env.begin() as txn:
        for key, value in txn.cursor():
            d = caffe_pb2.Datum()
            d.ParseFromString(value)
            out.append((key.decode(), d))
    return out


def bgr_chw(path, gray=False):
    """Reference pixels straight from Pillow: B, G, R planes (or L) as C×H×W."""
    im = Image.open(path)
    if gray:
        return np.asarray(im.convert("L"))[None]
    return np.asarray(im.convert("RGB"))[:, :, ::-1].transpose(2, 0, 1)


@pytest.fixture
def images(tmp_path):
    rng = np.random.RandomState(7)
    root = tmp_path / "imgs"
    (root / "sub dir").mkdir(parents=True)
    Image.fromarray(rng.randint(0, 256, (6, 8, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.randint(0, 256, (5, 7, 3), dtype=np.uint8)).save(root / "sub dir" / "b c.png")
    Image.fromarray(rng.randint(0, 256, (6, 8), dtype=np.uint8)).save(root / "g.png")  # gray file
    Image.fromarray(rng.randint(0, 256, (9, 10, 3), dtype=np.uint8)).save(root / "d.jpg", quality=90)
    listing = tmp_path / "list.txt"
    listing.write_text("a.png 3\nsub dir/b c.png 1\ng.png 0\nd.jpg 7\n")
    return tmp_path, str(root) + "/", str(listing)


def run(capfd, *argv):
    code = main(["convert_imageset", *argv])
    out, err = capfd.readouterr()
    return code, out + err


def test_raw_datums_keys_and_pixels(images, capfd):
    tmp, root, listing = images
    code, log = run(capfd, root, listing, str(tmp / "db"))
    assert code == 0
    assert "A total of 4 images." in log and "Processed 4 files." in log
    records = read_db(tmp / "db")
    assert [k for k, _ in records] == ["00000000_a.png", "00000001_sub dir/b c.png",
                                       "00000002_g.png", "00000003_d.jpg"]
    for (key, d), name, label in zip(records, ["a.png", "sub dir/b c.png", "g.png", "d.jpg"],
                                     [3, 1, 0, 7]):
        expect = bgr_chw(root + name)
        assert (d.channels, d.height, d.width) == expect.shape
        assert d.label == label
        assert d.HasField("encoded") and not d.encoded  # set explicitly, as Caffe does
        assert len(d.float_data) == 0
        np.testing.assert_array_equal(np.frombuffer(d.data, np.uint8).reshape(expect.shape),
                                      expect, err_msg=key)
    # the gray file becomes three equal planes in colour mode
    g = np.frombuffer(records[2][1].data, np.uint8).reshape(3, 6, 8)
    assert (g[0] == g[1]).all() and (g[1] == g[2]).all()


def test_gray_and_resize_match_opencv(images, capfd):
    cv2 = pytest.importorskip("cv2")
    tmp, root, listing = images
    assert run(capfd, "--gray", "--resize_height", "4", "--resize_width", "5", root, listing,
               str(tmp / "db"))[0] == 0
    for (_, d), name in zip(read_db(tmp / "db"), ["a.png", "sub dir/b c.png", "g.png", "d.jpg"]):
        assert (d.channels, d.height, d.width) == (1, 4, 5)
        ref = cv2.resize(cv2.imread(root + name, cv2.IMREAD_GRAYSCALE), (5, 4),
                         interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(np.frombuffer(d.data, np.uint8).reshape(4, 5), ref,
                                      err_msg=name)
    assert run(capfd, "-resize_height", "7", "-resize_width", "3", root, listing,
               str(tmp / "db3"))[0] == 0
    for (_, d), name in zip(read_db(tmp / "db3"), ["a.png", "sub dir/b c.png", "g.png", "d.jpg"]):
        ref = cv2.resize(cv2.imread(root + name, cv2.IMREAD_COLOR), (3, 7),
                         interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(
            np.frombuffer(d.data, np.uint8).reshape(3, 7, 3), ref.transpose(2, 0, 1), err_msg=name)


def test_one_dimension_alone_does_not_resize(images, capfd):
    tmp, root, listing = images
    assert run(capfd, "--resize_height", "4", root, listing, str(tmp / "db"))[0] == 0
    assert [(d.height, d.width) for _, d in read_db(tmp / "db")] == \
        [(6, 8), (5, 7), (6, 8), (9, 10)]


def test_encoded_keeps_file_bytes_or_reencodes(images, capfd):
    tmp, root, listing = images
    assert run(capfd, "--encoded", root, listing, str(tmp / "enc"))[0] == 0
    # without a resize every file's own bytes are stored, a gray PNG too (Caffe's
    # ReadImageToDatum; the data layer's force_color decides what a net gets)
    for (_, d), name in zip(read_db(tmp / "enc"), ["a.png", "sub dir/b c.png", "g.png", "d.jpg"]):
        assert d.encoded
        assert not d.HasField("channels")
        assert d.data == open(root + name, "rb").read()

    # --encode_type implies --encoded; png -> jpg re-encodes, jpg stays as it is
    code, log = run(capfd, "--encode_type", "jpg", root, listing, str(tmp / "jpg"))
    assert code == 0 and "encode_type specified, assuming encoded=true." in log
    records = read_db(tmp / "jpg")
    assert all(d.encoded and d.data[:2] == b"\xff\xd8" for _, d in records)
    assert records[3][1].data == open(root + "d.jpg", "rb").read()
    got = bgr_chw(io.BytesIO(records[0][1].data)).astype(float)
    want = bgr_chw(root + "a.png").astype(float)
    assert abs(got.mean() - want.mean()) < 3  # lossy, but the same picture
    ref = io.BytesIO()  # cv::imencode's default JPEG quality is 95
    Image.open(root + "a.png").convert("RGB").save(ref, "JPEG", quality=95)
    np.testing.assert_array_equal(got, bgr_chw(ref))

    # resizing an encoded set re-encodes (PNG: lossless, so equal to the raw resize)
    assert run(capfd, "--encoded", "--encode_type", "png", "--resize_height", "4",
               "--resize_width", "4", root, listing, str(tmp / "enc4"))[0] == 0
    assert run(capfd, "--resize_height", "4", "--resize_width", "4", root, listing,
               str(tmp / "raw4"))[0] == 0
    for (_, e), (_, r) in zip(read_db(tmp / "enc4"), read_db(tmp / "raw4")):
        assert e.encoded and e.data[:4] == b"\x89PNG"
        np.testing.assert_array_equal(bgr_chw(io.BytesIO(e.data)),
                                      np.frombuffer(r.data, np.uint8).reshape(3, 4, 4))


def test_gray_encoded_colour_file_keeps_its_bytes_as_caffe(images, capfd):
    # --gray reads the file gray, but with no resize Caffe stores the file as it is
    tmp, root, listing = images
    assert run(capfd, "--gray", "--encoded", root, listing, str(tmp / "db"))[0] == 0
    records = dict(read_db(tmp / "db"))
    assert records["00000002_g.png"].data == open(root + "g.png", "rb").read()
    assert records["00000000_a.png"].data == open(root + "a.png", "rb").read()


def test_shuffle_is_repeatable(images, capfd):
    tmp, root, listing = images
    lines = [f"{n} {i}" for i, n in enumerate(["a.png", "g.png", "d.jpg"] * 4)]
    (tmp / "long.txt").write_text("\n".join(lines) + "\n")
    code, log = run(capfd, "--shuffle", root, str(tmp / "long.txt"), str(tmp / "s1"))
    assert code == 0 and "Shuffling data" in log
    assert run(capfd, "--shuffle=true", root, str(tmp / "long.txt"), str(tmp / "s2"))[0] == 0
    first = [(k, d.label) for k, d in read_db(tmp / "s1")]
    assert first == [(k, d.label) for k, d in read_db(tmp / "s2")]
    assert [k[:9] for k, _ in first] == [f"{i:08d}_" for i in range(12)]
    labels = [lab for _, lab in first]
    assert sorted(labels) == list(range(12)) and labels != list(range(12))
    # each key names the image of its label's line
    for key, lab in first:
        assert key[9:] == lines[lab].rsplit(" ", 1)[0]


def test_boolean_flag_spellings(images, capfd):
    tmp, root, listing = images
    assert run(capfd, "-gray", root, listing, str(tmp / "a"))[0] == 0
    assert run(capfd, "--gray=false", "--nocheck_size", root, listing, str(tmp / "b"))[0] == 0
    assert read_db(tmp / "a")[0][1].channels == 1
    assert read_db(tmp / "b")[0][1].channels == 3
    assert run(capfd, "--gray=maybe", root, listing, str(tmp / "c"))[0] == 1


def test_missing_image_is_skipped_with_a_warning(images, capfd):
    tmp, root, listing = images
    (tmp / "l2.txt").write_text("a.png 1\nnope.png 2\nnot_image.png 4\nd.jpg 3\n")
    (tmp / "imgs" / "not_image.png").write_bytes(b"this is not a png")
    code, log = run(capfd, root, str(tmp / "l2.txt"), str(tmp / "db"))
    assert code == 0
    assert f"Could not open or find file {root}nope.png" in log
    assert f"Could not open or find file {root}not_image.png" in log
    assert "Processed 2 files." in log and "Skipped 2 of 4 images" in log
    # keys keep the line numbers, so the skipped ones leave gaps (as in Caffe)
    assert [k for k, _ in read_db(tmp / "db")] == ["00000000_a.png", "00000003_d.jpg"]


def test_check_size_names_the_file_and_leaves_no_database(images, capfd):
    tmp, root, listing = images
    code, log = run(capfd, "--check_size", root, listing, str(tmp / "db"))
    assert code == 1
    assert "sub dir/b c.png" in log and "3x5x7" in log and "3x6x8" in log
    assert not (tmp / "db").exists()
    # equal sizes pass
    assert run(capfd, "--check_size", "--resize_height", "3", "--resize_width", "3", root,
               listing, str(tmp / "ok"))[0] == 0


def test_commits_in_batches(images, capfd, monkeypatch):
    tmp, root, listing = images
    monkeypatch.setattr(convert_imageset, "COMMIT_EVERY", 3)
    (tmp / "l7.txt").write_text("a.png 0\n" * 7)
    code, log = run(capfd, root, str(tmp / "l7.txt"), str(tmp / "db"))
    assert code == 0
    assert [ln.split("] ")[1] for ln in log.splitlines() if "Processed" in ln] == \
        ["Processed 3 files.", "Processed 6 files.", "Processed 7 files."]
    assert len(read_db(tmp / "db")) == 7


def test_bad_input(images, capfd):
    tmp, root, listing = images
    code, log = run(capfd, "--backend", "leveldb", root, listing, str(tmp / "db"))
    assert code == 1 and "LMDB only" in log
    (tmp / "exists").mkdir()
    code, log = run(capfd, root, listing, str(tmp / "exists"))
    assert code == 1 and "already exists" in log
    (tmp / "bad.txt").write_text("a.png 1\nb.png\n")
    code, log = run(capfd, root, str(tmp / "bad.txt"), str(tmp / "db"))
    assert code == 1 and "bad.txt:2" in log
    (tmp / "bad2.txt").write_text("a.png one\n")
    code, log = run(capfd, root, str(tmp / "bad2.txt"), str(tmp / "db"))
    assert code == 1 and "bad2.txt:1" in log and "'one'" in log
    code, log = run(capfd, root, str(tmp / "nolist.txt"), str(tmp / "db"))
    assert code == 1 and "nolist.txt" in log
    code, log = run(capfd, "--encode_type", "xyz", root, listing, str(tmp / "db"))
    assert code == 1 and "xyz" in log
    code, log = run(capfd, root[:-1], listing, str(tmp / "db"))  # root without its '/'
    assert code == 1 and "did you mean" in log
    assert not (tmp / "db").exists()
    assert not os.path.exists(str(tmp / "db"))
