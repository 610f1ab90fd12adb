"""caffemodel and HDF5 weights: round trips, Caffe's matching rules, all-or-nothing copies,
legacy vintages and bad files."""
import numpy as np
import pytest

import caffelite as caffe
from caffelite.errors import CaffeliteError, WeightsError
from caffelite.formats.caffemodel import read_caffemodel_blobs
from caffelite.formats.wire import encode_len_field, encode_varint
from caffelite.proto import caffe_pb2

NET = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 5 } } }
layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "h"
  inner_product_param { num_output: %d weight_filler { type: "gaussian" std: 1 }
                        bias_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "h" top: "h" }
layer { name: "%s" type: "InnerProduct" bottom: "h" top: "y"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 } } }
"""


def make_net(tmp_path, hidden=4, last="fc2", seed=0, fname="net.prototxt"):
    path = tmp_path / fname
    path.write_text(NET % (hidden, last))
    caffe.set_random_seed(seed)
    return caffe.Net(str(path), caffe.TEST), path


def params_of(net):
    return {n: [b.data.copy() for b in bs] for n, bs in net.params.items()}


def test_save_and_load_round_trip_binary_and_hdf5(tmp_path):
    net, proto = make_net(tmp_path, seed=1)
    net.params["fc1"][0].data[0, 0] = 123.0  # net surgery survives save/load
    for name in ("w.caffemodel", "w.caffemodel.h5"):
        path = tmp_path / name
        if name.endswith(".h5"):
            net.save_hdf5(str(path))
        else:
            net.save(str(path))
        other, _ = make_net(tmp_path, seed=2)
        other.copy_from(str(path))
        for n, arrays in params_of(net).items():
            for a, b in zip(arrays, other.params[n]):
                np.testing.assert_array_equal(a, b.data)
        assert other.params["fc1"][0].data[0, 0] == 123.0


def test_saved_file_is_a_current_format_netparameter(tmp_path):
    net, _ = make_net(tmp_path)
    net.save(str(tmp_path / "w.caffemodel"))
    param = caffe_pb2.NetParameter()
    param.ParseFromString((tmp_path / "w.caffemodel").read_bytes())
    assert param.name == "tiny" and len(param.layers) == 0
    assert [l.name for l in param.layer] == ["data", "fc1", "relu", "fc2"]
    fc1 = param.layer[1]
    assert fc1.phase == caffe.TEST and list(fc1.blobs[0].shape.dim) == [4, 5]
    np.testing.assert_array_equal(np.array(fc1.blobs[0].data).reshape(4, 5),
                                  net.params["fc1"][0].data)


def test_hdf5_detected_by_content_not_extension(tmp_path):
    net, _ = make_net(tmp_path, seed=3)
    net.save_hdf5(str(tmp_path / "weights.bin"))
    other, _ = make_net(tmp_path, seed=4)
    other.copy_from(str(tmp_path / "weights.bin"))
    np.testing.assert_array_equal(other.params["fc2"][0].data, net.params["fc2"][0].data)


def test_renamed_layer_keeps_its_filler_and_extra_source_layers_are_skipped(tmp_path):
    net, _ = make_net(tmp_path, seed=5)
    net.save(str(tmp_path / "w.caffemodel"))
    caffe.set_random_seed(6)
    (tmp_path / "ft.prototxt").write_text(NET % (4, "fc2_new"))
    ft = caffe.Net(str(tmp_path / "ft.prototxt"), caffe.TEST)
    filler = ft.params["fc2_new"][0].data.copy()
    ft.copy_from(str(tmp_path / "w.caffemodel"))
    np.testing.assert_array_equal(ft.params["fc1"][0].data, net.params["fc1"][0].data)
    np.testing.assert_array_equal(ft.params["fc2_new"][0].data, filler)


def test_shape_mismatch_names_file_layer_and_shapes_and_changes_nothing(tmp_path):
    net, _ = make_net(tmp_path, hidden=4, seed=7)
    net.save(str(tmp_path / "w.caffemodel"))
    other, _ = make_net(tmp_path, hidden=6, seed=8, fname="other.prototxt")
    before = params_of(other)
    with pytest.raises(WeightsError) as err:
        other.copy_from(str(tmp_path / "w.caffemodel"))
    msg = str(err.value)
    assert "w.caffemodel" in msg and "'fc1'" in msg and "(6, 5)" in msg and "(4, 5)" in msg
    assert "rename" in msg
    for n, arrays in before.items():  # all or nothing: fc1 came first and was not copied
        for a, b in zip(arrays, other.params[n]):
            np.testing.assert_array_equal(a, b.data)


def test_blob_count_mismatch(tmp_path):
    net, _ = make_net(tmp_path)
    net.save(str(tmp_path / "w.caffemodel"))
    text = (NET % (4, "fc2")).replace("weight_filler { type: \"gaussian\" std: 1 } } }",
                                      "bias_term: false } }")
    (tmp_path / "nobias.prototxt").write_text(text)
    other = caffe.Net(str(tmp_path / "nobias.prototxt"), caffe.TEST)
    with pytest.raises(WeightsError, match="Incompatible number of blobs for layer fc2: the file "
                                          "has 2, the net's layer has 1"):
        other.copy_from(str(tmp_path / "w.caffemodel"))


def test_comma_separated_weights_apply_in_order(tmp_path):
    a, _ = make_net(tmp_path, seed=9)
    a.save(str(tmp_path / "a.caffemodel"))
    b, _ = make_net(tmp_path, seed=10)
    b.save(str(tmp_path / "b.caffemodel"))
    c, proto = make_net(tmp_path, seed=11)
    c = caffe.Net(str(proto), caffe.TEST,
                  weights=f"{tmp_path / 'a.caffemodel'},{tmp_path / 'b.caffemodel'}")
    np.testing.assert_array_equal(c.params["fc1"][0].data, b.params["fc1"][0].data)


@pytest.mark.parametrize("content, what", [
    (b"", "holds no layers"),
    (b'name: "x"\nlayer { name: "a" }\n', "not a binary caffemodel"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "not a binary caffemodel"),
])
def test_bad_weight_files_name_the_file(tmp_path, content, what):
    net, _ = make_net(tmp_path)
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(content)
    before = params_of(net)
    with pytest.raises(WeightsError, match="bad.caffemodel"):
        net.copy_from(str(path))
    for n, arrays in before.items():
        for x, y in zip(arrays, net.params[n]):
            np.testing.assert_array_equal(x, y.data)


def test_truncated_caffemodel(tmp_path):
    net, _ = make_net(tmp_path)
    net.save(str(tmp_path / "w.caffemodel"))
    data = (tmp_path / "w.caffemodel").read_bytes()
    (tmp_path / "cut.caffemodel").write_bytes(data[: len(data) - 7])
    with pytest.raises(WeightsError, match="cut.caffemodel.*(truncated|corrupt|past the end)"):
        net.copy_from(str(tmp_path / "cut.caffemodel"))


def test_data_length_disagreeing_with_shape(tmp_path):
    param = caffe_pb2.NetParameter()
    layer = param.layer.add(name="fc1", type="InnerProduct")
    blob = layer.blobs.add()
    blob.shape.dim.extend([4, 5])
    blob.data.extend([1.0] * 19)
    (tmp_path / "short.caffemodel").write_bytes(param.SerializeToString())
    net, _ = make_net(tmp_path)
    with pytest.raises(WeightsError, match="short.caffemodel.*'fc1'.*20.*19"):
        net.copy_from(str(tmp_path / "short.caffemodel"))


def test_a_broken_blob_in_a_layer_the_net_does_not_take_is_ignored(tmp_path):
    # Caffe reads only the layers it matches by name
    net, _ = make_net(tmp_path)
    net.save(str(tmp_path / "w.caffemodel"))
    param = caffe_pb2.NetParameter()
    param.ParseFromString((tmp_path / "w.caffemodel").read_bytes())
    extra = param.layer.add(name="unused_fc", type="InnerProduct")
    extra.blobs.add().shape.dim.extend([10, 10])               # no data at all
    (tmp_path / "extra.caffemodel").write_bytes(param.SerializeToString())
    other, _ = make_net(tmp_path, seed=4)
    other.copy_from(str(tmp_path / "extra.caffemodel"))
    np.testing.assert_array_equal(other.params["fc1"][0].data, net.params["fc1"][0].data)


def test_hdf5_weights_load_the_data_group_only(tmp_path):
    # Caffe's CopyTrainedLayersFromHDF5 never opens the diff group
    h5py = pytest.importorskip("h5py")
    net, _ = make_net(tmp_path)
    net.params["fc1"][0].diff[...] = 7.0
    net.save_hdf5(str(tmp_path / "w.h5"))
    with h5py.File(tmp_path / "w.h5", "a") as f:
        for name in f["data"]:
            for key in f["data"][name]:
                shape = f["data"][name][key].shape
                f.create_dataset(f"diff/{name}/{key}", data=np.full(shape, 7.0))
    other, _ = make_net(tmp_path, seed=3)
    other.copy_from(str(tmp_path / "w.h5"))
    np.testing.assert_array_equal(other.params["fc1"][0].data, net.params["fc1"][0].data)
    assert not other.params["fc1"][0].diff.any()


def test_a_diff_of_the_wrong_length_is_refused(tmp_path):
    net, _ = make_net(tmp_path)
    net.save(str(tmp_path / "w.caffemodel"))
    param = caffe_pb2.NetParameter()
    param.ParseFromString((tmp_path / "w.caffemodel").read_bytes())
    fc1 = [lp for lp in param.layer if lp.name == "fc1"][0]
    fc1.blobs[0].diff.extend([1.0] * 3)
    (tmp_path / "diff.caffemodel").write_bytes(param.SerializeToString())
    with pytest.raises(WeightsError, match="'fc1' blob 0.*20 diff values.*holds 3"):
        net.copy_from(str(tmp_path / "diff.caffemodel"))


def test_missing_weights_file(tmp_path):
    net, _ = make_net(tmp_path)
    with pytest.raises(WeightsError, match="no such weights file"):
        net.copy_from(str(tmp_path / "nope.caffemodel"))


def _float_field_unpacked(field, values):
    key = encode_varint((field << 3) | 5)
    return b"".join(key + np.float32(v).tobytes() for v in values)


def test_unpacked_floats_double_data_and_legacy_dims(tmp_path):
    w = np.arange(20, dtype=np.float32).reshape(4, 5)
    b = np.arange(4, dtype=np.float64) + 0.5
    # blob 0: legacy 1x1x4x5 dims, unpacked float data
    blob0 = b"".join(encode_varint((f << 3) | 0) + encode_varint(v)
                     for f, v in ((1, 1), (2, 1), (3, 4), (4, 5)))
    blob0 += _float_field_unpacked(5, w.ravel())
    # blob 1: shape (4,), packed double_data
    dims = encode_varint(4)
    shape = encode_len_field(1, len(dims)) + dims
    blob1 = encode_len_field(7, len(shape)) + shape + encode_len_field(8, b.nbytes) + b.tobytes()
    name = b"fc1"
    layer = encode_len_field(1, len(name)) + name
    layer += encode_len_field(7, len(blob0)) + blob0 + encode_len_field(7, len(blob1)) + blob1
    data = encode_len_field(100, len(layer)) + layer
    (tmp_path / "odd.caffemodel").write_bytes(data)
    # protobuf itself agrees with our reader on this file
    ref = caffe_pb2.NetParameter()
    ref.ParseFromString(data)
    np.testing.assert_array_equal(np.array(ref.layer[0].blobs[0].data), w.ravel())
    layers = read_caffemodel_blobs(tmp_path / "odd.caffemodel")
    assert layers[0][1][0].legacy and layers[0][1][0].shape == (1, 1, 4, 5)
    net, _ = make_net(tmp_path)
    net.copy_from(str(tmp_path / "odd.caffemodel"))
    np.testing.assert_array_equal(net.params["fc1"][0].data, w)
    np.testing.assert_array_equal(net.params["fc1"][1].data, b.astype(np.float32))


def test_v1_caffemodel_with_legacy_dims(tmp_path):
    param = caffe_pb2.NetParameter()
    v1 = param.layers.add(name="fc1", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    w = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    bw = v1.blobs.add(num=1, channels=1, height=4, width=5)
    bw.data.extend(w.ravel())
    bb = v1.blobs.add(num=1, channels=1, height=1, width=4)
    bb.data.extend([1, 2, 3, 4])
    (tmp_path / "v1.caffemodel").write_bytes(param.SerializeToString())
    net, _ = make_net(tmp_path)
    net.copy_from(str(tmp_path / "v1.caffemodel"))
    np.testing.assert_array_equal(net.params["fc1"][0].data, w)
    np.testing.assert_array_equal(net.params["fc1"][1].data, [1, 2, 3, 4])


def test_weights_errors_are_caffelite_errors():
    assert issubclass(WeightsError, CaffeliteError)


def test_weights_matching_no_layer_warn_loudly(tmp_path, caplog):
    import logging
    net, _ = make_net(tmp_path, seed=12)
    net.save(str(tmp_path / "w.caffemodel"))
    text = (NET % (4, "fc2")).replace('"fc1"', '"other1"').replace('"fc2"', '"other2"')
    (tmp_path / "renamed.prototxt").write_text(text)
    other = caffe.Net(str(tmp_path / "renamed.prototxt"), caffe.TEST)
    log = logging.getLogger("caffelite")
    log.addHandler(caplog.handler)
    try:
        other.copy_from(str(tmp_path / "w.caffemodel"))
    finally:
        log.removeHandler(caplog.handler)
    assert "NOTHING WAS TRANSFERRED" in caplog.text and "fc1" in caplog.text


def test_saved_layers_match_what_caffe_wrote(tmp_path, fixtures_dir):
    # Caffe's caffemodel of the lenet case holds each layer's parameter as Caffe's
    # Layer::ToProto writes it (loss layers get loss_weight 1 added at setup); ours must
    # say the same of every layer, blobs aside
    from caffelite.testing.fixtures import chdir
    case = fixtures_dir / "nets" / "lenet"
    with chdir(case):
        net = caffe.Net("net.prototxt", caffe.TEST, weights="weights.caffemodel")
    net.save(str(tmp_path / "ours.caffemodel"))

    def headers(path):
        p = caffe_pb2.NetParameter()
        p.ParseFromString(open(path, "rb").read())
        out = []
        for lp in p.layer:
            del lp.blobs[:]
            lp.ClearField("phase")
            out.append(lp)
        return out
    theirs = headers(case / "weights.caffemodel")
    ours = headers(tmp_path / "ours.caffemodel")
    assert [lp.name for lp in ours] == [lp.name for lp in theirs]
    for a, b in zip(ours, theirs):
        assert a == b, f"layer {a.name}:\n{a}\nvs Caffe's\n{b}"
    assert list(ours[-1].loss_weight) == [1.0]


def test_hdf5_layout_matches_caffes_snapshot(tmp_path, fixtures_dir):
    # Net::ToHDF5 makes a group for every layer, blobs or not
    h5py = pytest.importorskip("h5py")
    from caffelite.testing.fixtures import chdir
    case = fixtures_dir / "formats" / "caffemodel_h5"
    with chdir(case):
        net = caffe.Net("net.prototxt", caffe.TRAIN)
    net.save_hdf5(str(tmp_path / "ours.h5"))

    def layout(path):
        with h5py.File(path, "r") as f:
            return {k: sorted(f["data"][k].keys()) for k in f["data"]}
    assert layout(tmp_path / "ours.h5") == layout(case / "snap_iter_2.caffemodel.h5")
