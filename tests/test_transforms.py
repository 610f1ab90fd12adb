"""caffelite.transforms.fold_batchnorm: Convolution -> BatchNorm -> Scale folded for inference."""
import numpy as np

import caffelite as caffe
from caffelite.testing.fixtures import chdir, key, load_case
from caffelite.transforms import fold_batchnorm


def _resnet_block(fixtures_dir):
    case_dir = fixtures_dir / "nets" / "resnet_block"
    case, data = load_case(case_dir)
    with chdir(case_dir):
        net = caffe.Net("net.prototxt", case["weights"], caffe.TEST)
    for b in case["inputs"]:
        net.blobs[b].data[...] = data[f"input/{key(b)}"]
    return case, data, net


def test_folded_resnet_block_matches_caffe(fixtures_dir):
    case, data, net = _resnet_block(fixtures_dir)
    before = {n: [b.data.copy() for b in blobs] for n, blobs in net.params.items()}
    folded = fold_batchnorm(net)
    types = [layer.type for layer in folded.layers]
    assert "BatchNorm" not in types and "Scale" not in types
    assert types.count("Convolution") == 2
    for b in case["inputs"]:
        folded.blobs[b].data[...] = data[f"input/{key(b)}"]
    folded.forward()
    # every blob a later layer reads keeps its name and Caffe's value
    for b in ("res1_sum", "pool", "fc", "loss"):
        np.testing.assert_allclose(folded.blobs[b].data, data[f"output/{key(b)}"],
                                   rtol=1e-3, atol=1e-5)
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
    from caffelite.formats.prototxt import parse_text
    from caffelite.proto import caffe_pb2
    param = parse_text(text, caffe_pb2.NetParameter())
    param.state.phase = caffe_pb2.TEST
    net = caffe.Net(param)
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
    from caffelite.formats.prototxt import parse_text
    from caffelite.proto import caffe_pb2
    param = parse_text(text, caffe_pb2.NetParameter())
    param.state.phase = caffe_pb2.TEST
    net = caffe.Net(param)
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
