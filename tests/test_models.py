"""Tests for the model definitions under models/.

Two kinds of checks:

* text-level checks that parse every prototxt with caffe_pb2 (syntax, topology,
  LeNet's TRAIN/TEST phase rules, the solver), and
* net-level checks that build each deploy net with the pycaffe-style API
  (``caffe.Net(path, caffe.TEST)``), reshape it to batch 2 and compare the
  shapes of key blobs with the values worked out by hand from Caffe's
  output-size formulas:

    convolution: out = floor((in + 2*pad - dilation*(kernel-1) - 1) / stride) + 1
    pooling:     out = ceil((in + 2*pad - kernel) / stride) + 1, then minus 1
                 when pad > 0 and (out-1)*stride >= in + pad.

Each model has a fast ``test_<model>_shapes`` (build + reshape, no forward) and a
``test_<model>_forward``; the VGG16 and ResNet-50 forwards are marked ``slow``.
"""

import functools
import importlib.util
import pathlib
import sys

import numpy as np
import pytest

import caffelite as caffe

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

B = 2  # batch size the tests reshape every deploy net to


# ---------------------------------------------------------------------------
# Expected shapes (batch 2)
# ---------------------------------------------------------------------------

SPECS = {
    "lenet": {
        "input": (1, 28, 28),
        "prob": (B, 10),
        "shapes": {
            "data": (B, 1, 28, 28),
            "conv1": (B, 20, 24, 24),
            "pool1": (B, 20, 12, 12),
            "conv2": (B, 50, 8, 8),
            "pool2": (B, 50, 4, 4),
            "ip1": (B, 500),
            "ip2": (B, 10),
            "prob": (B, 10),
        },
    },
    "caffenet": {
        "input": (3, 227, 227),
        "prob": (B, 1000),
        "shapes": {
            "data": (B, 3, 227, 227),
            "conv1": (B, 96, 55, 55),
            "pool1": (B, 96, 27, 27),
            "norm1": (B, 96, 27, 27),
            "conv2": (B, 256, 27, 27),
            "pool2": (B, 256, 13, 13),
            "norm2": (B, 256, 13, 13),
            "conv3": (B, 384, 13, 13),
            "conv4": (B, 384, 13, 13),
            "conv5": (B, 256, 13, 13),
            "pool5": (B, 256, 6, 6),
            "fc6": (B, 4096),
            "fc7": (B, 4096),
            "fc8": (B, 1000),
            "prob": (B, 1000),
        },
    },
    "alexnet": {
        "input": (3, 227, 227),
        "prob": (B, 1000),
        "shapes": {
            "data": (B, 3, 227, 227),
            "conv1": (B, 96, 55, 55),
            "norm1": (B, 96, 55, 55),  # LRN before pooling in AlexNet
            "pool1": (B, 96, 27, 27),
            "conv2": (B, 256, 27, 27),
            "norm2": (B, 256, 27, 27),
            "pool2": (B, 256, 13, 13),
            "conv3": (B, 384, 13, 13),
            "conv4": (B, 384, 13, 13),
            "conv5": (B, 256, 13, 13),
            "pool5": (B, 256, 6, 6),
            "fc6": (B, 4096),
            "fc7": (B, 4096),
            "fc8": (B, 1000),
            "prob": (B, 1000),
        },
    },
    "vgg16": {
        "input": (3, 224, 224),
        "prob": (B, 1000),
        "shapes": {
            "data": (B, 3, 224, 224),
            "conv1_1": (B, 64, 224, 224),
            "conv1_2": (B, 64, 224, 224),
            "pool1": (B, 64, 112, 112),
            "conv2_2": (B, 128, 112, 112),
            "pool2": (B, 128, 56, 56),
            "conv3_3": (B, 256, 56, 56),
            "pool3": (B, 256, 28, 28),
            "conv4_3": (B, 512, 28, 28),
            "pool4": (B, 512, 14, 14),
            "conv5_3": (B, 512, 14, 14),
            "pool5": (B, 512, 7, 7),
            "fc6": (B, 4096),
            "fc7": (B, 4096),
            "fc8": (B, 1000),
            "prob": (B, 1000),
        },
    },
    "googlenet": {
        "input": (3, 224, 224),
        "prob": (B, 1000),
        "shapes": {
            "data": (B, 3, 224, 224),
            "conv1/7x7_s2": (B, 64, 112, 112),
            "pool1/3x3_s2": (B, 64, 56, 56),
            "pool1/norm1": (B, 64, 56, 56),
            "conv2/3x3_reduce": (B, 64, 56, 56),
            "conv2/3x3": (B, 192, 56, 56),
            "pool2/3x3_s2": (B, 192, 28, 28),
            "inception_3a/1x1": (B, 64, 28, 28),
            "inception_3a/3x3": (B, 128, 28, 28),
            "inception_3a/5x5": (B, 32, 28, 28),
            "inception_3a/pool": (B, 192, 28, 28),
            "inception_3a/pool_proj": (B, 32, 28, 28),
            "inception_3a/output": (B, 256, 28, 28),
            "inception_3b/output": (B, 480, 28, 28),
            "pool3/3x3_s2": (B, 480, 14, 14),
            "inception_4a/output": (B, 512, 14, 14),
            "inception_4b/output": (B, 512, 14, 14),
            "inception_4c/output": (B, 512, 14, 14),
            "inception_4d/output": (B, 528, 14, 14),
            "inception_4e/output": (B, 832, 14, 14),
            "pool4/3x3_s2": (B, 832, 7, 7),
            "inception_5a/output": (B, 832, 7, 7),
            "inception_5b/output": (B, 1024, 7, 7),
            "pool5/7x7_s1": (B, 1024, 1, 1),
            "loss3/classifier": (B, 1000),
            "prob": (B, 1000),
        },
    },
    "resnet50": {
        "input": (3, 224, 224),
        "prob": (B, 1000),
        "shapes": {
            "data": (B, 3, 224, 224),
            "conv1": (B, 64, 112, 112),
            "pool1": (B, 64, 56, 56),
            "res2a_branch1": (B, 256, 56, 56),
            "res2a_branch2a": (B, 64, 56, 56),
            "res2a_branch2b": (B, 64, 56, 56),
            "res2a_branch2c": (B, 256, 56, 56),
            "res2a": (B, 256, 56, 56),
            "res2c": (B, 256, 56, 56),
            "res3a_branch1": (B, 512, 28, 28),
            "res3a_branch2a": (B, 128, 28, 28),
            "res3a": (B, 512, 28, 28),
            "res3d": (B, 512, 28, 28),
            "res4a": (B, 1024, 14, 14),
            "res4f": (B, 1024, 14, 14),
            "res5a_branch2b": (B, 512, 7, 7),
            "res5a": (B, 2048, 7, 7),
            "res5c": (B, 2048, 7, 7),
            "pool5": (B, 2048, 1, 1),
            "fc1000": (B, 1000),
            "prob": (B, 1000),
        },
    },
    "squeezenet1.1": {
        "input": (3, 227, 227),
        # As in the original release there is no Flatten: softmax over the
        # globally pooled (N, 1000, 1, 1) blob keeps that shape.
        "prob": (B, 1000, 1, 1),
        "shapes": {
            "data": (B, 3, 227, 227),
            "conv1": (B, 64, 113, 113),
            "pool1": (B, 64, 56, 56),
            "fire2/squeeze1x1": (B, 16, 56, 56),
            "fire2/expand1x1": (B, 64, 56, 56),
            "fire2/expand3x3": (B, 64, 56, 56),
            "fire2/concat": (B, 128, 56, 56),
            "fire3/concat": (B, 128, 56, 56),
            "pool3": (B, 128, 28, 28),
            "fire4/concat": (B, 256, 28, 28),
            "fire5/concat": (B, 256, 28, 28),
            "pool5": (B, 256, 14, 14),
            "fire6/concat": (B, 384, 14, 14),
            "fire7/concat": (B, 384, 14, 14),
            "fire8/concat": (B, 512, 14, 14),
            "fire9/concat": (B, 512, 14, 14),
            "conv10": (B, 1000, 14, 14),
            "pool10": (B, 1000, 1, 1),
            "prob": (B, 1000, 1, 1),
        },
    },
}

ALL_MODELS = list(SPECS)


def deploy_path(model):
    return MODELS / model / "deploy.prototxt"


# ---------------------------------------------------------------------------
# caffe_pb2 loading for the text-level tests
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _load_caffe_pb2():
    try:
        from caffelite.proto import caffe_pb2  # noqa: WPS433
        return caffe_pb2
    except ImportError:
        pass
    path = ROOT / "caffelite" / "proto" / "caffe_pb2.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("_models_test_caffe_pb2", str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def caffe_pb2():
    module = _load_caffe_pb2()
    if module is None:
        pytest.skip("caffelite/proto/caffe_pb2.py is not available")
    return module


def _parse(pb2, path, message="NetParameter"):
    from google.protobuf import text_format

    msg = getattr(pb2, message)()
    text_format.Merge(pathlib.Path(path).read_text(), msg)
    return msg


def _kept(layer, phase):
    """Caffe's include/exclude filtering, phase only."""
    def matches(rule):
        return not rule.HasField("phase") or rule.phase == phase

    if layer.include:
        return any(matches(rule) for rule in layer.include)
    return not any(matches(rule) for rule in layer.exclude)


# ---------------------------------------------------------------------------
# Text-level tests
# ---------------------------------------------------------------------------

def test_every_model_has_files():
    for model in ALL_MODELS:
        assert deploy_path(model).is_file(), model
        readme = MODELS / model / "readme.md"
        assert readme.is_file(), model
        text = readme.read_text()
        assert text.startswith("---\n"), model
        front = text.split("---\n")[1]
        for key in ("name:", "caffemodel:", "caffemodel_url:", "license:", "sha1:", "caffe_commit:"):
            assert key in front, (model, key)
    for name in ("train_val.prototxt", "solver.prototxt"):
        assert (MODELS / "lenet" / name).is_file()


@pytest.mark.parametrize("model", ALL_MODELS)
def test_deploy_parses_and_is_well_formed(caffe_pb2, model):
    net = _parse(caffe_pb2, deploy_path(model))
    layers = list(net.layer)
    assert layers, model
    first = layers[0]
    assert first.type == "Input" and list(first.top) == ["data"]
    dims = tuple(first.input_param.shape[0].dim)
    expected_batch = 64 if model == "lenet" else 10
    assert dims == (expected_batch,) + SPECS[model]["input"]

    names = [layer.name for layer in layers]
    assert len(names) == len(set(names)), "layer names must be unique"

    # Every bottom must have been produced by an earlier layer.
    produced = set()
    for layer in layers:
        for bottom in layer.bottom:
            assert bottom in produced, (model, layer.name, bottom)
        produced.update(layer.top)

    last = layers[-1]
    assert last.type == "Softmax" and last.name == "prob" and list(last.top) == ["prob"]
    for blob in SPECS[model]["shapes"]:
        assert blob in produced, (model, blob)


def test_model_specific_structure(caffe_pb2):
    def types(model):
        return [layer.type for layer in _parse(caffe_pb2, deploy_path(model)).layer]

    googlenet = _parse(caffe_pb2, deploy_path("googlenet"))
    outputs = [l.name for l in googlenet.layer if l.type == "Concat"]
    assert outputs == ["inception_%s/output" % t
                       for t in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert not any(l.name.startswith(("loss1", "loss2")) for l in googlenet.layer)

    resnet = _parse(caffe_pb2, deploy_path("resnet50"))
    bns = [l for l in resnet.layer if l.type == "BatchNorm"]
    # conv1 + 16 blocks * 3 convs + 4 projection shortcuts
    assert len(bns) == 53
    assert all(l.batch_norm_param.use_global_stats for l in bns)
    scales = [l for l in resnet.layer if l.type == "Scale"]
    assert len(scales) == 53 and all(l.scale_param.bias_term for l in scales)
    assert types("resnet50").count("Eltwise") == 16
    assert types("resnet50").count("Convolution") == 53

    assert types("vgg16").count("Convolution") == 13
    assert types("vgg16").count("InnerProduct") == 3
    assert types("squeezenet1.1").count("Concat") == 8

    for model in ("caffenet", "alexnet"):
        order = [l.name for l in _parse(caffe_pb2, deploy_path(model)).layer]
        if model == "caffenet":
            assert order.index("pool1") < order.index("norm1")
        else:
            assert order.index("norm1") < order.index("pool1")


def test_lenet_train_val_phase_rules(caffe_pb2):
    net = _parse(caffe_pb2, MODELS / "lenet" / "train_val.prototxt")
    layers = list(net.layer)
    assert len(layers) == 11

    train_only = [l.name for l in layers if any(r.phase == caffe_pb2.TRAIN for r in l.include)]
    test_only = [l.name for l in layers if any(r.phase == caffe_pb2.TEST for r in l.include)]
    assert train_only == ["mnist"]
    assert test_only == ["mnist", "accuracy"]

    train = [l for l in layers if _kept(l, caffe_pb2.TRAIN)]
    test = [l for l in layers if _kept(l, caffe_pb2.TEST)]
    common = ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"]
    assert [l.name for l in train] == ["mnist"] + common + ["loss"]
    assert [l.name for l in test] == ["mnist"] + common + ["accuracy", "loss"]

    train_data, test_data = train[0], test[0]
    for layer, source, batch in ((train_data, "data/mnist_train_lmdb", 64),
                                 (test_data, "data/mnist_test_lmdb", 100)):
        assert layer.type == "Data"
        assert list(layer.top) == ["data", "label"]
        assert layer.data_param.source == source
        assert layer.data_param.batch_size == batch
        assert layer.data_param.backend == caffe_pb2.DataParameter.LMDB
        assert layer.transform_param.scale == pytest.approx(0.00390625)

    by_name = {l.name: l for l in layers}
    assert by_name["conv1"].convolution_param.num_output == 20
    assert list(by_name["conv1"].convolution_param.kernel_size) == [5]
    assert by_name["conv2"].convolution_param.num_output == 50
    assert by_name["ip1"].inner_product_param.num_output == 500
    assert by_name["ip2"].inner_product_param.num_output == 10
    assert by_name["loss"].type == "SoftmaxWithLoss"
    assert list(by_name["loss"].bottom) == ["ip2", "label"]
    assert by_name["accuracy"].type == "Accuracy"


def test_lenet_solver(caffe_pb2):
    solver = _parse(caffe_pb2, MODELS / "lenet" / "solver.prototxt", "SolverParameter")
    assert solver.net == "models/lenet/train_val.prototxt"
    assert (ROOT / solver.net).is_file()
    assert list(solver.test_iter) == [100]
    assert solver.test_interval == 500
    assert solver.base_lr == pytest.approx(0.01)
    assert solver.momentum == pytest.approx(0.9)
    assert solver.weight_decay == pytest.approx(0.0005)
    assert solver.lr_policy == "inv"
    assert solver.gamma == pytest.approx(0.0001)
    assert solver.power == pytest.approx(0.75)
    assert solver.display == 100
    assert solver.max_iter == 10000
    assert solver.snapshot == 5000
    assert solver.snapshot_prefix
    assert solver.solver_mode == caffe_pb2.SolverParameter.CPU


# ---------------------------------------------------------------------------
# Net-level tests
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _built_net(model):
    """Build the deploy net once per model (the shapes and forward tests of one
    model run back to back and share it) and reshape it to batch 2."""
    caffe.set_random_seed(0)
    net = caffe.Net(str(deploy_path(model)), caffe.TEST)
    c, h, w = SPECS[model]["input"]
    net.blobs["data"].reshape(B, c, h, w)
    net.reshape()
    return net


def _check_shapes(model):
    net = _built_net(model)
    actual = {name: tuple(net.blobs[name].data.shape) for name in SPECS[model]["shapes"]}
    assert actual == SPECS[model]["shapes"]


def _neutralise_batchnorm(net):
    """Freshly built BatchNorm layers hold zero statistics (and a zero scale
    factor), which with use_global_stats divides by sqrt(eps) at every layer
    and overflows a 50-layer net. Give them mean 0 / variance 1 instead."""
    for name, blobs in net.params.items():
        if name.startswith("bn") and len(blobs) == 3:
            blobs[0].data[...] = 0.0
            blobs[1].data[...] = 1.0
            blobs[2].data[...] = 1.0


def _check_forward(model):
    net = _built_net(model)
    if model == "resnet50":
        _neutralise_batchnorm(net)
    rng = np.random.RandomState(0)
    shape = (B,) + SPECS[model]["input"]
    net.blobs["data"].data[...] = rng.standard_normal(shape).astype(np.float32)
    out = net.forward()
    assert "prob" in out
    prob = np.asarray(out["prob"])
    assert prob.shape == SPECS[model]["prob"]
    assert np.all(np.isfinite(prob))
    assert np.all(prob >= 0)
    np.testing.assert_allclose(prob.reshape(B, -1).sum(axis=1), np.ones(B), atol=1e-4)
    # forward must not have changed any of the key shapes
    for name, expected in SPECS[model]["shapes"].items():
        assert tuple(net.blobs[name].data.shape) == expected, name


def test_lenet_shapes():
    _check_shapes("lenet")


def test_lenet_forward():
    _check_forward("lenet")


def test_caffenet_shapes():
    _check_shapes("caffenet")


def test_caffenet_forward():
    _check_forward("caffenet")


def test_alexnet_shapes():
    _check_shapes("alexnet")


def test_alexnet_forward():
    _check_forward("alexnet")


def test_vgg16_shapes():
    _check_shapes("vgg16")


@pytest.mark.slow
def test_vgg16_forward():
    _check_forward("vgg16")


def test_googlenet_shapes():
    _check_shapes("googlenet")


def test_googlenet_forward():
    _check_forward("googlenet")


def test_resnet50_shapes():
    _check_shapes("resnet50")


@pytest.mark.slow
def test_resnet50_forward():
    _check_forward("resnet50")


def test_squeezenet1_1_shapes():
    _check_shapes("squeezenet1.1")


def test_squeezenet1_1_forward():
    _check_forward("squeezenet1.1")
