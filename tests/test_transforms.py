"""caffelite.transforms: fold_batchnorm (Convolution -> BatchNorm -> Scale folded for
inference) and fuse_relu (in-place ReLUs applied by the layer before them)."""
import numpy as np
import pytest

import caffelite as caffe
from caffelite.testing.fixtures import chdir, key, load_case
from caffelite.transforms import fold_batchnorm, fuse_relu


def _resnet_block(fixtures_dir):
    case_dir = fixtures_dir / "nets" / "resnet_block"
    case, data = load_case(case_dir)
    with chdir(case_dir):
        net = caffe.Net("net.prototxt", case["weights"], caffe.TEST)
    for b in case["inputs"]:
        net.blobs[b].data[...] = data[f"input/{key(b)}"]
    return case, data, net


def _test_net(text):
    """A TEST-phase Net from prototxt text (no file: no upgrades)."""
    from caffelite.formats.prototxt import parse_text
    from caffelite.proto import caffe_pb2
    param = parse_text(text, caffe_pb2.NetParameter())
    param.state.phase = caffe_pb2.TEST
    return caffe.Net(param)


def _forward_matches_caffe(net, case, data):
    """Caffe's inputs in, every blob a later layer reads keeps its name and Caffe's value."""
    for b in case["inputs"]:
        net.blobs[b].data[...] = data[f"input/{key(b)}"]
    net.forward()
    for b in ("res1_sum", "pool", "fc", "loss"):
        np.testing.assert_allclose(net.blobs[b].data, data[f"output/{key(b)}"],
                                   rtol=1e-3, atol=1e-5)


def test_folded_resnet_block_matches_caffe(fixtures_dir):
    case, data, net = _resnet_block(fixtures_dir)
    before = {n: [b.data.copy() for b in blobs] for n, blobs in net.params.items()}
    folded = fold_batchnorm(net)
    types = [layer.type for layer in folded.layers]
    assert "BatchNorm" not in types and "Scale" not in types
    assert types.count("Convolution") == 2
    _forward_matches_caffe(folded, case, data)
    # the given net is left alone
    assert [layer.type for layer in net.layers].count("BatchNorm") == 2
    for n, blobs in net.params.items():
        for b, old in zip(blobs, before[n]):
            np.testing.assert_array_equal(b.data, old)


def test_folding_keeps_batch_norm_that_computes_statistics():
    text = """
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
    layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
            convolution_param { num_output: 4 kernel_size: 3
                                weight_filler { type: "gaussian" std: 0.3 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c"
            batch_norm_param { use_global_stats: false } }
    """
    net = _test_net(text)
    assert [layer.type for layer in fold_batchnorm(net).layers].count("BatchNorm") == 1


def test_folding_a_conv_whose_output_is_also_read_elsewhere_is_refused():
    text = """
    layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
    layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
            convolution_param { num_output: 2 kernel_size: 1
                                weight_filler { type: "gaussian" std: 0.3 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "c" top: "n"
            batch_norm_param { use_global_stats: true } }
    layer { name: "sum" type: "Eltwise" bottom: "c" bottom: "n" top: "s" }
    """
    net = _test_net(text)
    rng = np.random.default_rng(0)
    bn = net.layer_dict["bn"]
    bn.blobs[0].data[...] = rng.normal(size=2)
    bn.blobs[1].data[...] = rng.uniform(0.5, 2, size=2)
    bn.blobs[2].data[...] = 1
    net.blobs["x"].data[...] = rng.standard_normal((1, 2, 4, 4))
    net.forward()
    folded = fold_batchnorm(net)
    assert [layer.type for layer in folded.layers].count("BatchNorm") == 1
    folded.blobs["x"].data[...] = net.blobs["x"].data
    folded.forward()
    np.testing.assert_allclose(folded.blobs["s"].data, net.blobs["s"].data, rtol=1e-6)


FUSE_NET = """
force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 3 dim: 3 dim: 24 dim: 24 } } }
layer { name: "conv_a" type: "Convolution" bottom: "x" top: "a"
        convolution_param { num_output: 5 kernel_size: 3 pad: 1
                            weight_filler { type: "gaussian" std: 0.3 }
                            bias_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu_a" type: "ReLU" bottom: "a" top: "a" }
layer { name: "conv_b" type: "Convolution" bottom: "a" top: "b"
        convolution_param { num_output: 6 kernel_size: 3 stride: 2
                            weight_filler { type: "gaussian" std: 0.3 }
                            bias_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu_b" type: "ReLU" bottom: "b" top: "b" relu_param { negative_slope: 0.1 } }
layer { name: "conv_c" type: "Convolution" bottom: "b" top: "c"
        convolution_param { num_output: 6 kernel_size: 1 bias_term: false
                            weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu_c" type: "ReLU" bottom: "c" top: "c" }
layer { name: "conv_d" type: "Convolution" bottom: "b" top: "d"
        convolution_param { num_output: 6 kernel_size: 1
                            weight_filler { type: "gaussian" std: 0.3 }
                            bias_filler { type: "gaussian" std: 0.3 } } }
layer { name: "sum" type: "Eltwise" bottom: "c" bottom: "d" top: "e" }
layer { name: "relu_e" type: "ReLU" bottom: "e" top: "e" }
layer { name: "wsum" type: "Eltwise" bottom: "e" bottom: "d" top: "f"
        eltwise_param { coeff: 2 coeff: -1 } }
layer { name: "relu_f" type: "ReLU" bottom: "f" top: "f" relu_param { negative_slope: 0.2 } }
layer { name: "conv_g" type: "Convolution" bottom: "f" top: "g"
        convolution_param { num_output: 4 kernel_size: 1
                            weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu_h" type: "ReLU" bottom: "g" top: "h" }
layer { name: "prod" type: "Eltwise" bottom: "h" bottom: "h" top: "p"
        eltwise_param { operation: PROD } }
layer { name: "relu_p" type: "ReLU" bottom: "p" top: "p" }
"""


def _fuse_case():
    caffe.set_random_seed(3)
    net = _test_net(FUSE_NET)
    net.blobs["x"].data[...] = np.random.default_rng(1).standard_normal((3, 3, 24, 24))
    return net


@pytest.mark.parametrize("nthreads", [1, 3])
def test_fused_relu_gives_the_same_bits_forward_and_backward(nthreads, monkeypatch):
    from caffelite.kernels import parallel
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 4)      # tiny pieces for the threads
    old = parallel.num_threads()
    parallel.set_num_threads(nthreads)
    try:
        net = _fuse_case()
        fused = fuse_relu(net)
        # in place right after a Convolution or an Eltwise SUM: fused; after PROD, or not
        # in place: a layer of its own
        assert {n for n, l in fused.layer_dict.items() if getattr(l, "absorbed", False)} == \
            {"relu_a", "relu_b", "relu_c", "relu_e", "relu_f"}
        assert fused.layer_dict["conv_b"].fused_relu == pytest.approx(0.1)
        assert net.layer_dict["conv_a"].fused_relu is None       # the given net is left alone
        for n in (net, fused):
            n.forward()
            for b in n.blobs.values():
                b.diff[...] = 0
            n.blobs["p"].diff[...] = np.random.default_rng(2).standard_normal(
                n.blobs["p"].shape)
            n.backward()
        for name, b in net.blobs.items():
            np.testing.assert_array_equal(fused.blobs[name].data, b.data, err_msg=name)
            np.testing.assert_array_equal(fused.blobs[name].diff, b.diff, err_msg=name)
        assert (net.blobs["a"].data == 0).any() and (net.blobs["b"].data < 0).any()
    finally:
        parallel.set_num_threads(old)


def test_folded_and_fused_resnet_block_matches_caffe(fixtures_dir):
    case, data, net = _resnet_block(fixtures_dir)
    fast = fuse_relu(fold_batchnorm(net))
    assert any(getattr(layer, "absorbed", False) for layer in fast.layers)
    _forward_matches_caffe(fast, case, data)
