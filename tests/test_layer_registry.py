"""caffe.layer_type_list() covers every layer type Caffe 1.0 registers (reference §2)."""
import pytest

import caffelite as caffe
from caffelite.errors import LayerError
from caffelite.proto import caffe_pb2

CAFFE_1_0_TYPES = """
Convolution Deconvolution Pooling SPP Im2col LRN Crop InnerProduct Embed Dropout ReLU PReLU
ELU Sigmoid TanH Swish AbsVal BNLL Threshold Clip Power Exp Log BatchNorm Scale Bias MVN
Concat Slice Split Flatten Reshape Tile Eltwise Reduction ArgMax Filter BatchReindex Silence
Parameter Input Softmax SoftmaxWithLoss SigmoidCrossEntropyLoss EuclideanLoss HingeLoss
MultinomialLogisticLoss InfogainLoss ContrastiveLoss Accuracy Data ImageData WindowData
HDF5Data HDF5Output MemoryData DummyData RNN LSTM LSTMUnit Python
""".split()


def test_every_caffe_type_is_registered():
    registered = set(caffe.layer_type_list())
    missing = sorted(set(CAFFE_1_0_TYPES) - registered)
    assert not missing, f"not registered: {missing}"
    assert caffe.layer_type_list() == sorted(registered)


def test_every_v1_enum_maps_to_a_registered_type():
    from caffelite.formats.legacy import V1_TYPE_NAMES
    registered = set(caffe.layer_type_list())
    for enum_name in caffe_pb2.V1LayerParameter.LayerType.keys():
        if enum_name != "NONE":
            assert V1_TYPE_NAMES[enum_name] in registered, enum_name


def test_unknown_type_error_names_layer_and_lists_types():
    from caffelite.layer import create_layer
    lp = caffe_pb2.LayerParameter(name="mystery", type="Warp")
    with pytest.raises(LayerError) as err:
        create_layer(lp)
    assert "'mystery'" in str(err.value) and "Warp" in str(err.value)
    assert "Convolution" in str(err.value) and "SoftmaxWithLoss" in str(err.value)
