"""Replay the data-layer fixture cases (``check``: data, memory, datums) made by Caffe."""
import os

import numpy as np
from google.protobuf import text_format

from ..backend import asnumpy
from .fixtures import Mismatch, _compare, chdir, key, load_case


def _net(case, case_dir):
    import caffelite as caffe
    phase = caffe.TRAIN if case["phase"] == "TRAIN" else caffe.TEST
    with chdir(case_dir):
        kwargs = {}
        if case.get("level") or case.get("stages"):
            kwargs = {"level": case.get("level", 0), "stages": case.get("stages", [])}
        return caffe.Net("net.prototxt", phase, **kwargs)


def _check_structure(net, case):
    for field, actual in (("layers", list(net._layer_names)),
                          ("layer_types", [l.type for l in net.layers]),
                          ("blobs", list(net.blobs)), ("net_outputs", net.outputs)):
        if case.get(field) and actual != case[field]:
            raise Mismatch(f"{field}: {actual}, Caffe has {case[field]}")


def _compare_passes(net, case, data):
    rtol, atol = case.get("rtol", 0.0), case.get("atol", 0.0)
    for k in range(case["passes"]):
        net.forward()
        for b in case["outputs"]:
            _compare(f"forward/{k}/{b}", net.blobs[b].data, data[f"forward/{k}/{key(b)}"],
                     rtol, atol)


def replay_data_case(case_dir):
    """``data``: build net.prototxt, forward ``passes`` times, compare every output."""
    case, data = load_case(case_dir)
    net = _net(case, case_dir)
    _check_structure(net, case)
    _compare_passes(net, case, data)
    return net


def replay_memory_case(case_dir):
    """``memory``: as ``data``, after net.set_input_arrays(memory/data, memory/label)."""
    from ..layer_types.memory_data import set_input_arrays
    case, data = load_case(case_dir)
    net = _net(case, case_dir)
    _check_structure(net, case)
    feed = getattr(net, "set_input_arrays", None)
    arrays = (np.ascontiguousarray(data["memory/data"]),
              np.ascontiguousarray(data["memory/label"]))
    if feed is not None:
        feed(*arrays)
    else:
        set_input_arrays(net, *arrays)
    _compare_passes(net, case, data)
    return net


def read_lmdb_datums(path):
    """[(key, Datum)] of an LMDB in key order."""
    import lmdb
    from ..proto import caffe_pb2
    out = []
    env = lmdb.open(path, readonly=True, lock=False, subdir=os.path.isdir(path))
    try:
        with env.begin() as txn:
            for k, v in txn.cursor():
                datum = caffe_pb2.Datum()
                datum.ParseFromString(v)
                out.append((k.decode(), datum))
    finally:
        env.close()
    return out


def expected_batches(datums, labels, transform_param, batch_size, passes):
    """The Data layer's TEST-phase batches computed with NumPy: records in order with
    wrap-around, centre crop, mean_value or no mean, scale (no mirror)."""
    tp = transform_param
    if tp.mirror or tp.HasField("mean_file"):
        raise ValueError("expected_batches covers centre crop, mean_value and scale only")
    x = np.asarray(datums, dtype=np.float32)
    n, c, h, w = x.shape
    crop = tp.crop_size
    if crop:
        y0, x0 = (h - crop) // 2, (w - crop) // 2
        x = x[:, :, y0:y0 + crop, x0:x0 + crop]
    if len(tp.mean_value):
        mv = np.asarray(tp.mean_value, dtype=np.float32)
        x = x - (mv.reshape(-1, 1, 1) if mv.size > 1 else mv[0])
    x = x * np.float32(tp.scale)
    out = []
    for k in range(passes):
        idx = (np.arange(batch_size) + k * batch_size) % n
        out.append((x[idx], np.asarray(labels, dtype=np.float32)[idx]))
    return out


def replay_datums_case(case_dir):
    """``datums``: the LMDB's records in key order equal datum/data and datum/label with
    the case's keys; the Data layer of net.prototxt (TEST phase) gives the batches that
    NumPy computes from them, wrapping around after the last record."""
    from ..io import datum_to_array
    from ..proto import caffe_pb2
    case, data = load_case(case_dir)
    records = read_lmdb_datums(os.path.join(case_dir, case["source"]))
    keys = [k for k, _ in records]
    if keys != case["keys"]:
        raise Mismatch(f"LMDB keys {keys}, expected {case['keys']}")
    if sorted(case["insertion_order"]) != keys:
        raise Mismatch("insertion_order does not hold the same keys")
    arrays = np.stack([datum_to_array(d) for _, d in records])
    if arrays.dtype != data["datum/data"].dtype:
        raise Mismatch(f"Datum pixels are {arrays.dtype}, expected {data['datum/data'].dtype}")
    _compare("datum/data", arrays, data["datum/data"], 0.0, 0.0)
    _compare("datum/label", np.array([d.label for _, d in records]), data["datum/label"],
             0.0, 0.0)
    net_param = caffe_pb2.NetParameter()
    with open(os.path.join(case_dir, "net.prototxt"), encoding="utf-8") as f:
        text_format.Merge(f.read(), net_param)
    layer = next(l for l in net_param.layer if l.type == "Data")
    expected = expected_batches(data["datum/data"], data["datum/label"],
                                layer.transform_param, layer.data_param.batch_size,
                                case["passes"])
    net = _net(case, case_dir)
    rtol, atol = case.get("rtol", 0.0), case.get("atol", 1e-6)
    data_top, label_top = layer.top[0], layer.top[1]
    for k, (x, y) in enumerate(expected):
        net.forward()
        _compare(f"pass {k}: {data_top}", asnumpy(net.blobs[data_top].data), x, rtol, atol)
        _compare(f"pass {k}: {label_top}", asnumpy(net.blobs[label_top].data), y, rtol, atol)
    return net


REPLAY_DATA = {"data": replay_data_case, "memory": replay_memory_case,
               "datums": replay_datums_case}


# -- small datasets for tests ------------------------------------------------------------

def write_lmdb(path, records, map_size=1 << 26):
    """Write {key: value} (str/bytes keys; Datum or bytes values) to an LMDB directory."""
    import lmdb
    env = lmdb.open(os.fspath(path), map_size=map_size)
    try:
        with env.begin(write=True) as txn:
            for k, v in (records.items() if isinstance(records, dict) else records):
                k = k.encode() if isinstance(k, str) else k
                txn.put(k, v if isinstance(v, bytes) else v.SerializeToString())
    finally:
        env.close()
    return os.fspath(path)


def encode_image(img, fmt="PNG", quality=95):
    """H x W x 3 BGR (or H x W / H x W x 1 gray) uint8 -> encoded bytes, as cv::imencode."""
    import io
    from PIL import Image
    img = np.asarray(img, dtype=np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    pil = Image.fromarray(img[:, :, ::-1] if img.ndim == 3 else img)
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def make_datum(array=None, label=0, encoded=None):
    """A Datum from a C x H x W array (uint8 -> data bytes, float -> float_data) or from
    encoded image bytes."""
    from ..proto import caffe_pb2
    datum = caffe_pb2.Datum(label=int(label))
    if encoded is not None:
        datum.data, datum.encoded = encoded, True
        return datum
    arr = np.asarray(array)
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float32).ravel())
    return datum
