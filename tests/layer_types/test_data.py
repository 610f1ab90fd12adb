"""Data layer over LMDB: key order, wrap-around, raw/float/encoded Datums, transformations,
seeded repeatability, backends, bad input, prefetch shutdown, the lmdb_centre_crop fixture."""
import gc
import logging
import threading

import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.data.image import decode_image
from caffelite.errors import CaffeliteError, LayerError
from caffelite.io import save_mean_file
from caffelite.proto import caffe_pb2
from caffelite.testing.data_fixtures import (encode_image, make_datum, replay_datums_case,
                                             write_lmdb)

KEYS = ["k3", "k10", "k1", "a", "k2"]          # LMDB order: a, k1, k10, k2, k3


def net_from(text, phase=caffe.TEST):
    return caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), phase)


def data_net(source, batch=2, transform="", extra="", phase=caffe.TEST, tops=2):
    top = 'top: "data" top: "label"' if tops == 2 else 'top: "data"'
    return net_from(f'layer {{ name: "d" type: "Data" {top} '
                    f'transform_param {{ {transform} }} '
                    f'data_param {{ source: "{source}" batch_size: {batch} {extra} }} }}',
                    phase)


@pytest.fixture
def raw_db(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {k: rng.integers(0, 256, (3, 5, 6), dtype=np.uint8) for k in KEYS}
    labels = {k: i for i, k in enumerate(KEYS)}
    path = write_lmdb(tmp_path / "raw", {k: make_datum(arrays[k], labels[k]) for k in KEYS})
    order = sorted(KEYS)
    return path, np.stack([arrays[k] for k in order]), np.array([labels[k] for k in order])


def test_key_order_wrap_around_and_labels(raw_db):
    path, x, y = raw_db
    net = data_net(path, batch=2, extra="backend: LMDB")
    assert net.blobs["data"].shape == (2, 3, 5, 6) and net.blobs["label"].shape == (2,)
    for k in range(4):                          # 8 records read from 5: wraps after 5
        net.forward()
        idx = [(2 * k) % 5, (2 * k + 1) % 5]
        np.testing.assert_array_equal(net.blobs["data"].data, x[idx].astype(np.float32))
        np.testing.assert_array_equal(net.blobs["label"].data, y[idx])
    assert net.blobs["data"].data.dtype == np.float32


def test_test_phase_centre_crop_mean_file_and_scale(raw_db, tmp_path):
    path, x, _ = raw_db
    mean = np.random.default_rng(1).uniform(0, 255, (1, 3, 5, 6)).astype(np.float32)
    save_mean_file(mean, tmp_path / "mean.binaryproto")
    net = data_net(path, batch=5, transform=f'crop_size: 3 scale: 0.5 mean_file: '
                                            f'"{tmp_path / "mean.binaryproto"}"',
                   extra="backend: LMDB")
    net.forward()
    expected = (x[:, :, 1:4, 1:4].astype(np.float32) - mean[0][:, 1:4, 1:4]) * np.float32(0.5)
    np.testing.assert_array_equal(net.blobs["data"].data, expected)


def test_float_datums_and_single_top(tmp_path):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3)]
    path = write_lmdb(tmp_path / "f", {f"{i:03d}": make_datum(a, i) for i, a in
                                       enumerate(arrays)})
    net = data_net(path, batch=3, transform="mean_value: 1 mean_value: 2 scale: 2",
                   extra="backend: LMDB", tops=1)
    net.forward()
    mv = np.array([1, 2], np.float32).reshape(2, 1, 1)
    np.testing.assert_array_equal(net.blobs["data"].data,
                                  (np.stack(arrays) - mv) * np.float32(2))
    assert list(net.blobs) == ["data"]


def test_encoded_datums_png_exact_and_jpeg_as_decoded(tmp_path):
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, (6, 7, 3), dtype=np.uint8) for _ in range(4)]
    bufs = [encode_image(im, "PNG" if i % 2 == 0 else "JPEG") for i, im in enumerate(imgs)]
    path = write_lmdb(tmp_path / "enc", {f"{i}": make_datum(encoded=b, label=i)
                                         for i, b in enumerate(bufs)})
    net = data_net(path, batch=4, extra="backend: LMDB")
    net.forward()
    for i, b in enumerate(bufs):
        expected = decode_image(b).transpose(2, 0, 1)
        np.testing.assert_array_equal(net.blobs["data"].data[i], expected)
    np.testing.assert_array_equal(net.blobs["data"].data[0], imgs[0].transpose(2, 0, 1))


def test_encoded_colour_flags(tmp_path):
    gray = np.random.default_rng(4).integers(0, 256, (5, 5), dtype=np.uint8)
    path = write_lmdb(tmp_path / "g", {"0": make_datum(encoded=encode_image(gray, "PNG"))})
    assert data_net(path, 1, extra="backend: LMDB").blobs["data"].shape == (1, 1, 5, 5)
    for flag in ('transform_param_force_color', 'force_encoded_color: true'):
        transform = "force_color: true" if flag.startswith("transform") else ""
        extra = "backend: LMDB " + ("" if transform else flag)
        net = data_net(path, 1, transform=transform, extra=extra)
        net.forward()
        assert net.blobs["data"].shape == (1, 3, 5, 5)
        np.testing.assert_array_equal(net.blobs["data"].data[0], np.stack([gray] * 3))
    colour = np.random.default_rng(5).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    path = write_lmdb(tmp_path / "c", {"0": make_datum(encoded=encode_image(colour, "PNG"))})
    net = data_net(path, 1, transform="force_gray: true", extra="backend: LMDB")
    assert net.blobs["data"].shape == (1, 1, 4, 4)


def test_train_crop_and_mirror_are_seeded_and_valid(raw_db):
    path, x, _ = raw_db

    def run():
        caffe.set_random_seed(21)
        net = data_net(path, batch=5, transform="crop_size: 3 mirror: true",
                       extra="backend: LMDB", phase=caffe.TRAIN)
        out = []
        for _ in range(3):
            net.forward()
            out.append(net.blobs["data"].data.copy())
        return out

    a, b = run(), run()
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    windows = set()
    for batch in a:
        for i, item in enumerate(batch):
            found = [(h, w, m) for h in range(3) for w in range(4) for m in (0, 1)
                     if np.array_equal(item, (x[i, :, h:h + 3, w:w + 3][:, :, ::-1] if m
                                              else x[i, :, h:h + 3, w:w + 3]))]
            assert found, "every item is a (possibly mirrored) 3x3 crop of its Datum"
            windows.add(found[0])
    assert len(windows) > 3


def test_default_leveldb_backend_reads_an_lmdb_and_warns_once(raw_db):
    path, x, _ = raw_db
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("caffelite")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        for _ in range(2):
            net = data_net(path, batch=5)           # backend unset: Caffe's LEVELDB
            net.forward()
            np.testing.assert_array_equal(net.blobs["data"].data, x.astype(np.float32))
        data_net(path + "/data.mdb", batch=5, extra="backend: LEVELDB")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 2                       # once per path (dir, then data.mdb)
    assert "LEVELDB" in warnings[0].getMessage() and "LMDB" in warnings[0].getMessage()


def test_data_mdb_file_as_source(raw_db):
    path, x, _ = raw_db
    net = data_net(path + "/data.mdb", batch=5, extra="backend: LMDB")
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data, x.astype(np.float32))


def test_real_leveldb_missing_empty_and_not_lmdb_sources(tmp_path):
    ldb = tmp_path / "ldb"
    ldb.mkdir()
    for name in ("CURRENT", "LOG", "000005.ldb", "MANIFEST-000004"):
        (ldb / name).write_bytes(b"")
    with pytest.raises(LayerError, match=r"'d' \(type Data\).*LevelDB.*convert_imageset "
                                         r"--backend lmdb"):
        data_net(str(ldb))
    with pytest.raises(LayerError, match=r"'d'.*does not exist.*nowhere"):
        data_net(str(tmp_path / "nowhere"), extra="backend: LMDB")
    empty = write_lmdb(tmp_path / "empty", {})
    with pytest.raises(LayerError, match="empty"):
        data_net(empty, extra="backend: LMDB")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LayerError, match="not an LMDB"):
        data_net(str(tmp_path / "plain"), extra="backend: LMDB")


def test_bad_parameters(raw_db, tmp_path):
    path, _, _ = raw_db
    save_mean_file(np.zeros((1, 3, 4, 4), np.float32), tmp_path / "small.binaryproto")
    with pytest.raises(LayerError, match=r"mean_file is 3x4x4 but first record 'a' is 3x5x6"):
        data_net(path, transform=f'mean_file: "{tmp_path / "small.binaryproto"}"',
                 extra="backend: LMDB")
    with pytest.raises(LayerError, match="batch_size must be positive"):
        data_net(path, batch=0, extra="backend: LMDB")
    with pytest.raises(LayerError, match=r"crop_size 6 is larger than first record 'a'"):
        data_net(path, transform="crop_size: 6", extra="backend: LMDB")
    with pytest.raises(LayerError, match="mean_file or mean_value"):
        data_net(path, transform='mean_file: "m" mean_value: 1', extra="backend: LMDB")


def forward_error(net):
    with pytest.raises(LayerError) as info:
        net.forward()
    return str(info.value)


@pytest.mark.parametrize("bad,expected", [
    (make_datum(np.zeros((3, 6, 6), np.uint8)), r"record 'k2' is 3x6x6 but record 'k1'"),
    (make_datum(encoded=b"\x89PNG broken"), r"record 'k2': cannot decode"),
    (b"\xff\xff\xff", r"record 'k2' is not a Datum"),
])
def test_bad_records_reach_the_caller_naming_the_key(tmp_path, bad, expected):
    good = make_datum(np.zeros((3, 5, 5), np.uint8))
    path = write_lmdb(tmp_path / "bad", {"k1": good, "k2": bad, "k3": good})
    net = data_net(path, batch=3, extra="backend: LMDB")
    for _ in range(2):                              # raised again, never hangs
        message = forward_error(net)
        assert "'d' (type Data)" in message
        assert __import__("re").search(expected, message), message


def test_datum_byte_count_must_match_its_shape(tmp_path):
    datum = caffe_pb2.Datum(channels=3, height=2, width=2, data=b"\x00" * 11)
    path = write_lmdb(tmp_path / "short", {"k": datum})
    with pytest.raises(LayerError, match=r"record 'k'.*11 bytes.*needs 12"):
        data_net(path, batch=1, extra="backend: LMDB")


def test_v1_data_layer_with_deprecated_transform_fields(raw_db, tmp_path):
    path, x, _ = raw_db
    proto = tmp_path / "v1.prototxt"
    proto.write_text(f'layers {{ name: "d" type: DATA top: "data" top: "label" '
                     f'data_param {{ source: "{path}" batch_size: 5 backend: LMDB '
                     f'scale: 0.5 crop_size: 4 }} }}')
    net = caffe.Net(str(proto), caffe.TEST)
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data,
                                  x[:, :, 0:4, 1:5].astype(np.float32) * np.float32(0.5))


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "caffelite-prefetch-dlayer"]


def test_dropping_the_net_stops_its_prefetch_thread(raw_db):
    path, _, _ = raw_db
    net = net_from(f'layer {{ name: "dlayer" type: "Data" top: "data" '
                   f'data_param {{ source: "{path}" batch_size: 2 backend: LMDB }} }}')
    net.forward()
    assert _prefetch_threads()
    thread = _prefetch_threads()[0]
    del net
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def test_replay_lmdb_centre_crop_fixture(fixtures_dir):
    replay_datums_case(fixtures_dir / "data" / "lmdb_centre_crop")


def test_errors_are_caffelite_errors():
    assert issubclass(LayerError, CaffeliteError)
