"""Net surgery: Caffe's fully-convolutional conversion (issue 4, item 6).

LeNet's InnerProduct weights, transplanted into convolutions with the same number of
weights (ip1: 500×800 -> 500×50×4×4, ip2: 10×500 -> 10×500×1×1), give at every position
of a larger input the scores the original net gives on the corresponding 28×28 crop
(stride 4: the two 2×2 poolings). No training: random weights and random biases.
"""
import pathlib

import numpy as np
import pytest

import caffelite as caffe

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "models" / "lenet" / "deploy.prototxt"
H, W = 40, 48                 # not square, so a swapped axis shows
ROWS, COLS = (H - 28) // 4 + 1, (W - 28) // 4 + 1

FULL_CONV = """name: "LeNetFullConv"
layer { name: "data" type: "Input" top: "data"
        input_param { shape: { dim: 1 dim: 1 dim: %d dim: %d } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 20 kernel_size: 5 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 50 kernel_size: 5 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1-conv" type: "Convolution" bottom: "pool2" top: "ip1-conv"
        convolution_param { num_output: 500 kernel_size: 4 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1-conv" top: "ip1-conv" }
layer { name: "ip2-conv" type: "Convolution" bottom: "ip1-conv" top: "ip2-conv"
        convolution_param { num_output: 10 kernel_size: 1 } }
layer { name: "prob" type: "Softmax" bottom: "ip2-conv" top: "prob" }
""" % (H, W)


@pytest.fixture(scope="module")
def surgery(tmp_path_factory):
    """(classifier, fully convolutional net, its prototxt, the saved surgery caffemodel)."""
    tmp = tmp_path_factory.mktemp("surgery")
    caffe.set_mode_cpu()
    rng = np.random.default_rng(0)
    net = caffe.Net(str(DEPLOY), caffe.TEST)
    for blobs in net.params.values():              # non-zero biases, so they are checked too
        blobs[1].data[...] = rng.normal(scale=0.1, size=blobs[1].data.shape)
    weights = tmp / "lenet_random.caffemodel"
    net.save(str(weights))

    proto = tmp / "full_conv.prototxt"
    proto.write_text(FULL_CONV)
    # conv1/conv2 come from the file by name; ip1/ip2 have no counterpart and are skipped.
    full = caffe.Net(str(proto), str(weights), caffe.TEST)
    for pr, pr_conv in (("ip1", "ip1-conv"), ("ip2", "ip2-conv")):
        assert full.params[pr_conv][0].data.size == net.params[pr][0].data.size
        assert full.params[pr_conv][0].data.shape != net.params[pr][0].data.shape
        full.params[pr_conv][0].data.flat = net.params[pr][0].data.flat
        full.params[pr_conv][1].data[...] = net.params[pr][1].data
    saved = tmp / "full_conv.caffemodel"
    full.save(str(saved))
    return net, full, proto, saved


def _crop_scores(net, image, positions):
    crops = np.stack([image[4 * i:4 * i + 28, 4 * j:4 * j + 28] for i, j in positions])
    net.blobs["data"].reshape(len(positions), 1, 28, 28)
    net.forward(data=crops[:, None])
    return net.blobs["ip2"].data.copy(), net.blobs["prob"].data.copy()


def test_conv_layers_copied_by_name(surgery):
    net, full, _, _ = surgery
    for name in ("conv1", "conv2"):
        for a, b in zip(net.params[name], full.params[name]):
            np.testing.assert_array_equal(a.data, b.data)


def test_full_conv_scores_match_crops(surgery):
    net, full, _, _ = surgery
    image = np.random.default_rng(1).random((H, W), dtype=np.float32)
    full.blobs["data"].data[0, 0] = image
    prob = full.forward()["prob"][0].copy()
    scores = full.blobs["ip2-conv"].data[0].copy()
    assert scores.shape == (10, ROWS, COLS)
    positions = [(0, 0), (0, COLS - 1), (ROWS - 1, 0), (ROWS - 1, COLS - 1), (1, 2), (2, 3)]
    crop_scores, crop_prob = _crop_scores(net, image, positions)
    for k, (i, j) in enumerate(positions):
        np.testing.assert_allclose(scores[:, i, j], crop_scores[k], rtol=1e-4, atol=1e-5,
                                   err_msg=f"scores at output position {(i, j)}")
        np.testing.assert_allclose(prob[:, i, j], crop_prob[k], rtol=1e-4, atol=1e-6,
                                   err_msg=f"probabilities at output position {(i, j)}")
    # the positions really differ: the check is not comparing one constant vector
    assert np.abs(crop_scores[0] - crop_scores[-1]).max() > 1e-3


def test_surgery_survives_save_and_load(surgery):
    _, full, proto, saved = surgery
    reloaded = caffe.Net(str(proto), str(saved), caffe.TEST)
    for name, blobs in full.params.items():
        for a, b in zip(blobs, reloaded.params[name]):
            np.testing.assert_array_equal(a.data, b.data)
    image = np.random.default_rng(2).random((H, W), dtype=np.float32)
    full.blobs["data"].data[0, 0] = image
    reloaded.blobs["data"].data[0, 0] = image
    np.testing.assert_array_equal(full.forward()["prob"], reloaded.forward()["prob"])
