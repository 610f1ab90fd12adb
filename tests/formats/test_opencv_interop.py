"""A caffemodel written by caffelite loads in OpenCV's Caffe importer (OpenCV 4.x) and gives
the same outputs; and caffelite reads back what it wrote."""
import numpy as np
import pytest

import caffelite as caffe

cv2 = pytest.importorskip("cv2")
if int(cv2.__version__.split(".")[0]) >= 5:
    pytest.skip("OpenCV 5 dropped the Caffe importer", allow_module_level=True)

NET = """name: "interop"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 16 dim: 16 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 1
    weight_filler { type: "gaussian" std: 0.2 } bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { use_global_stats: true } }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 3 alpha: 0.01 beta: 0.75 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm1" top: "fc"
  inner_product_param { num_output: 5 weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_opencv_reads_a_caffelite_caffemodel(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text(NET)
    caffe.set_random_seed(11)
    net = caffe.Net(str(proto), caffe.TEST)
    rng = np.random.default_rng(0)
    mean, var = net.params["bn1"][0], net.params["bn1"][1]
    mean.data[...] = rng.standard_normal(8) * 0.1 * 3.0
    var.data[...] = (rng.random(8) + 0.5) * 3.0
    net.params["bn1"][2].data[...] = 3.0          # Caffe's statistics are sums over a factor
    net.params["scale1"][0].data[...] = rng.random(8) + 0.5
    net.params["scale1"][1].data[...] = rng.standard_normal(8) * 0.1
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    ours = net.forward(data=x)["prob"].copy()
    weights = tmp_path / "net.caffemodel"
    net.save(str(weights))
    cv_net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
    cv_net.setInput(x)
    theirs = cv_net.forward()
    np.testing.assert_allclose(theirs.reshape(ours.shape), ours, rtol=1e-4, atol=1e-5)
    again = caffe.Net(str(proto), str(weights), caffe.TEST)
    np.testing.assert_allclose(again.forward(data=x)["prob"], ours, rtol=1e-6)
