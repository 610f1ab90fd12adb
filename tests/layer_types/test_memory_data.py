"""MemoryData: set_input_arrays (pycaffe's checks), cycling batches, label shapes, arrays
referenced not copied, add_datum_vector with the transformer; replays memory_data."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError, LayerError
from caffelite.layer_types.memory_data import set_input_arrays
from caffelite.proto import caffe_pb2
from caffelite.testing.data_fixtures import make_datum, replay_memory_case


def memory_net(batch=2, c=1, h=2, w=3, transform=""):
    text = (f'layer {{ name: "mem" type: "MemoryData" top: "data" top: "label" '
            f'transform_param {{ {transform} }} '
            f'memory_data_param {{ batch_size: {batch} channels: {c} height: {h} '
            f'width: {w} }} }}')
    return caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), caffe.TEST)


def arrays(n=6, c=1, h=2, w=3):
    data = np.arange(n * c * h * w, dtype=np.float32).reshape(n, c, h, w)
    return data, np.arange(n, dtype=np.float32) + 100


def test_batches_cycle_and_label_shape():
    net = memory_net()
    assert net.blobs["data"].shape == (2, 1, 2, 3) and net.blobs["label"].shape == (2,)
    data, labels = arrays()
    set_input_arrays(net, data, labels)
    for k in range(5):                                   # 3 batches, then around again
        net.forward()
        rows = [(2 * k) % 6, (2 * k + 1) % 6]
        np.testing.assert_array_equal(net.blobs["data"].data, data[rows])
        assert net.blobs["label"].shape == (2, 1, 1, 1)  # Caffe reshapes it in Forward
        np.testing.assert_array_equal(net.blobs["label"].data.ravel(), labels[rows])


def test_arrays_are_referenced_not_copied():
    net = memory_net()
    data, labels = arrays(2)
    set_input_arrays(net, data, labels.reshape(2, 1, 1, 1).copy())
    data[1] = -7
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data[1], np.full((1, 2, 3), -7))


@pytest.mark.parametrize("make,match", [
    (lambda d, l: (d.astype(np.float64), l), "data array must be float32"),
    (lambda d, l: (d[:, :, :, ::-1], l), "data array must be C contiguous"),
    (lambda d, l: (d.reshape(6, 6), l), "data array must be 4-d"),
    (lambda d, l: (d.reshape(6, 1, 3, 2), l), r"dimensions after the first must be \(1, 2, 3\)"),
    (lambda d, l: (d, l.astype(np.int64)), "labels array must be float32"),
    (lambda d, l: (d, l[:4]), "same first dimension"),
    (lambda d, l: (d[:5], l[:5]), "multiple of the batch size"),
    (lambda d, l: (d.tolist(), l), "must be a NumPy array"),
])
def test_set_input_arrays_checks(make, match):
    net = memory_net()
    data, labels = arrays()
    with pytest.raises(LayerError, match=r"'mem' \(type MemoryData\).*" + match):
        set_input_arrays(net, *make(data, labels))


def test_forward_before_set_input_arrays_and_bad_params():
    with pytest.raises(LayerError, match="set_input_arrays"):
        memory_net().forward()
    with pytest.raises(LayerError, match="must all be set and positive"):
        memory_net(batch=0)


def test_first_layer_must_be_memory_data():
    text = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }'
    net = caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), caffe.TEST)
    with pytest.raises(CaffeliteError, match="first layer is a MemoryData"):
        set_input_arrays(net, *arrays())


def test_add_datum_vector_runs_the_transformer():
    net = memory_net(batch=2, c=1, h=2, w=2, transform="crop_size: 2 mean_value: 1 scale: 2")
    layer = net.layers[0]
    rng = np.random.default_rng(0)
    pix = [rng.integers(0, 256, (1, 4, 4), dtype=np.uint8) for _ in range(2)]
    layer.add_datum_vector([make_datum(p, label=i + 3) for i, p in enumerate(pix)])
    net.forward()
    expected = (np.stack(pix)[:, :, 1:3, 1:3].astype(np.float32) - 1) * 2
    np.testing.assert_array_equal(net.blobs["data"].data, expected)
    np.testing.assert_array_equal(net.blobs["label"].data.ravel(), [3, 4])
    with pytest.raises(LayerError, match="no Datum to add"):
        layer.add_datum_vector([])


def test_replay_memory_data_fixture(fixtures_dir):
    replay_memory_case(fixtures_dir / "data" / "memory_data")
