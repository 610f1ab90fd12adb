"""caffelite.net_spec: pycaffe's NetSpec, layers (L) and params (P)."""
import os

import numpy as np
import pytest

import caffelite as caffe
from caffelite.formats.netfile import read_net
from caffelite.net_rules import filter_net
from caffelite.net_spec import NetSpec, NetSpecError, layers as L, params as P, to_proto
from caffelite.proto import caffe_pb2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENET = os.path.join(REPO, "models", "lenet")


def lenet(source, batch_size, phase):
    """LeNet as models/lenet/train_val.prototxt has it, written the pycaffe way."""
    n = NetSpec()
    n.data, n.label = L.Data(name="mnist", include=dict(phase=phase),
                             transform_param=dict(scale=0.00390625),
                             source=source, batch_size=batch_size, backend=P.Data.LMDB,
                             ntop=2)
    lr = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
    fill = dict(weight_filler=dict(type="xavier"), bias_filler=dict(type="constant"))
    n.conv1 = L.Convolution(n.data, param=lr, num_output=20, kernel_size=5, **fill)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.conv2 = L.Convolution(n.pool1, param=lr, num_output=50, kernel_size=5, **fill)
    n.pool2 = L.Pooling(n.conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.ip1 = L.InnerProduct(n.pool2, param=lr, num_output=500, **fill)
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.ip1, param=lr, num_output=10, **fill)
    if phase == caffe.TEST:
        n.accuracy = L.Accuracy(n.ip2, n.label, include=dict(phase=caffe.TEST))
    n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    proto = n.to_proto()
    proto.name = "LeNet"
    return proto


def file_layers(phase):
    """The layers of models/lenet/train_val.prototxt that the given phase keeps."""
    param = read_net(os.path.join(LENET, "train_val.prototxt"))
    param.state.phase = phase
    return list(filter_net(param).layer)


def assert_same_layers(generated, expected):
    assert [l.name for l in generated] == [l.name for l in expected]
    for got, want in zip(generated, expected):
        assert got.type == want.type, got.name
        assert list(got.bottom) == list(want.bottom), got.name
        assert list(got.top) == list(want.top), got.name
        assert list(got.param) == list(want.param), got.name
        assert got == want, f"layer {got.name}:\n{got}\n!=\n{want}"


@pytest.mark.parametrize("phase,source,batch", [(caffe.TRAIN, "data/mnist_train_lmdb", 64),
                                                (caffe.TEST, "data/mnist_test_lmdb", 100)])
def test_lenet_matches_models_dir(phase, source, batch):
    generated = lenet(source, batch, phase)
    expected = file_layers(phase)
    # the generated net carries its own include rule, as the file's layers do
    assert_same_layers(list(generated.layer), expected)
    assert generated.name == "LeNet"


def test_lenet_deploy_matches_models_dir():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[64, 1, 28, 28]))
    lr = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
    fill = dict(weight_filler=dict(type="xavier"), bias_filler=dict(type="constant"))
    n.conv1 = L.Convolution(n.data, param=lr, num_output=20, kernel_size=5, **fill)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.conv2 = L.Convolution(n.pool1, param=lr, num_output=50, kernel_size=5, **fill)
    n.pool2 = L.Pooling(n.conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.ip1 = L.InnerProduct(n.pool2, param=lr, num_output=500, **fill)
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.ip1, param=lr, num_output=10, **fill)
    n.prob = L.Softmax(n.ip2)
    proto = n.to_proto()
    expected = read_net(os.path.join(LENET, "deploy.prototxt"))
    assert_same_layers(list(proto.layer), list(expected.layer))
    net = caffe.Net(proto, caffe.TEST)
    assert net.inputs == ["data"] and net.outputs == ["prob"]
    out = net.forward(data=np.random.RandomState(0).rand(64, 1, 28, 28).astype(np.float32))
    assert out["prob"].shape == (64, 10)
    np.testing.assert_allclose(out["prob"].sum(1), 1, rtol=1e-5)


def test_generated_train_net_builds_and_runs(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    db = tmp_path / "train_lmdb"
    env = lmdb.open(str(db), map_size=1 << 22)
    rng = np.random.RandomState(1)
    with env.begin(write=True) as txn:
        for i in range(8):
            datum = caffe_pb2.Datum(channels=1, height=28, width=28, label=i % 10,
                                    data=rng.randint(0, 256, (1, 28, 28)).astype(np.uint8)
                                    .tobytes())
            txn.put(b"%08d" % i, datum.SerializeToString())
    env.close()
    proto = lenet(str(db), 4, caffe.TRAIN)
    path = tmp_path / "lenet_train.prototxt"
    path.write_text(str(proto))
    net = caffe.Net(str(path), caffe.TRAIN)
    assert list(net._layer_names[:2]) == ["mnist", "conv1"]
    assert net.blobs["data"].shape == (4, 1, 28, 28)
    loss = net.forward()["loss"]
    assert np.isfinite(loss) and 0 < float(loss) < 20
    # the net's data layer scaled the pixels to [0, 1)
    assert 0 <= net.blobs["data"].data.min() and net.blobs["data"].data.max() < 1


def test_in_place_names_layer_by_attribute_and_top_by_bottom():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]))
    n.fc1 = L.InnerProduct(n.data, num_output=4)
    n.relu1 = L.ReLU(n.fc1, in_place=True)
    n.out = L.Sigmoid(n.relu1)
    layers = n.to_proto().layer
    relu = layers[2]
    assert (relu.name, list(relu.bottom), list(relu.top)) == ("relu1", ["fc1"], ["fc1"])
    assert list(layers[3].bottom) == ["fc1"]
    net = caffe.Net(n.to_proto(), caffe.TEST)
    assert net.outputs == ["out"]


def test_multi_top_and_auto_names():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 6]))
    n.a, n.b = L.Slice(n.data, ntop=2, slice_param=dict(axis=1, slice_point=[2]))
    c, d = L.Slice(n.b, ntop=2, axis=1, slice_point=2)   # unnamed: auto names
    n.out = L.Concat(n.a, c, d)
    proto = n.to_proto()
    names = [(l.name, list(l.top)) for l in proto.layer]
    assert names == [("data", ["data"]), ("a", ["a", "b"]), ("Slice1", ["Slice1", "Slice2"]),
                     ("out", ["out"])]
    assert list(proto.layer[2].slice_param.slice_point) == [2]   # scalar wrapped in a list
    net = caffe.Net(proto, caffe.TEST)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_array_equal(net.forward(data=x)["out"], x)


def test_to_proto_function_autonames_and_ntop_zero():
    data = L.DummyData(shape=[dict(dim=[2, 3])], data_filler=dict(type="constant", value=1))
    ip = L.InnerProduct(data, num_output=2, weight_filler=dict(type="xavier"))
    silent = L.Silence(ip, ntop=0)
    proto = to_proto(silent)
    assert [l.name for l in proto.layer] == ["DummyData1", "InnerProduct1", "Silence1"]
    assert list(proto.layer[2].top) == []
    assert ip.to_proto().layer[-1].name == "InnerProduct1"


def test_params_enums_and_fallback_fields():
    assert P.Pooling.MAX == caffe_pb2.PoolingParameter.MAX
    assert P.Pooling.AVE == caffe_pb2.PoolingParameter.AVE
    assert P.Data.LMDB == caffe_pb2.DataParameter.LMDB
    assert P.Eltwise.SUM == caffe_pb2.EltwiseParameter.SUM
    x = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    loss = L.EuclideanLoss(x, x, loss_weight=0.5, propagate_down=[True, False],
                           include=dict(phase=caffe.TRAIN, stage=["a", "b"]))
    layer = to_proto(loss).layer[-1]
    assert list(layer.loss_weight) == [0.5]
    assert list(layer.propagate_down) == [True, False]
    assert layer.include[0].phase == caffe.TRAIN and list(layer.include[0].stage) == ["a", "b"]
    pool = to_proto(L.Pooling(x, pool="AVE", kernel_size=2)).layer[-1]   # enum by name too
    assert pool.pooling_param.pool == caffe_pb2.PoolingParameter.AVE
    deconv = to_proto(L.Deconvolution(x, convolution_param=dict(num_output=3, kernel_size=2),
                                      param=[dict(lr_mult=0)] * 2, name="up")).layer[-1]
    assert deconv.name == "up" and deconv.convolution_param.num_output == 3
    assert [p.lr_mult for p in deconv.param] == [0, 0]
    assert "pool: AVE" in str(to_proto(L.Pooling(x, pool=P.Pooling.AVE)))


def test_undefined_attribute_is_a_clear_error():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 2]))
    with pytest.raises(AttributeError, match="no top 'dta'.*data"):
        L.ReLU(n.dta)
    with pytest.raises(KeyError, match="no top 'dta'"):
        n["dta"]
    assert not hasattr(n, "label")


def test_bottom_from_another_netspec_is_a_clear_error():
    train = NetSpec()
    train.data = L.Input(shape=dict(dim=[1, 2]))
    test = NetSpec()
    test.ip = L.InnerProduct(train.data, num_output=2)
    with pytest.raises(NetSpecError, match="bottom 0 is top 'data' of another NetSpec"):
        test.to_proto()
    test.data = train.data          # assigning it here makes it legitimate
    assert [l.name for l in test.to_proto().layer] == ["data", "ip"]


@pytest.mark.parametrize("make,match", [
    (lambda x: L.Convolution(x, kernal_size=3), "unknown argument 'kernal_size'"),
    (lambda x: L.Deconvolution(x, num_output=3), "no DeconvolutionParameter"),
    (lambda x: L.Pooling(x, pool="MEDIAN"), "'MEDIAN' is not a value of enum"),
    (lambda x: L.InnerProduct(x, num_output="ten"), "num_output: cannot set 'ten'"),
    (lambda x: L.InnerProduct(x, weight_filler="xavier"), "expected a dict for message"),
])
def test_bad_arguments_name_the_layer_and_field(make, match):
    x = L.Input(shape=dict(dim=[1, 2]))
    with pytest.raises(NetSpecError, match=match):
        to_proto(make(x))


def test_bad_bottoms_and_assignments():
    x = L.Input(shape=dict(dim=[1, 4]))
    pair = L.Slice(x, ntop=2)
    with pytest.raises(NetSpecError, match="bottom 0 is a tuple"):
        L.Concat(pair)
    with pytest.raises(NetSpecError, match="bottom 0 is a str"):
        L.ReLU("data")
    n = NetSpec()
    with pytest.raises(NetSpecError, match="unpack multi-top layers"):
        n.pair = pair
    with pytest.raises(AttributeError, match="no enum value 'MEDIAN'"):
        P.Pooling.MEDIAN
    with pytest.raises(AttributeError, match="no message NoSuchParameter"):
        P.NoSuch.X
