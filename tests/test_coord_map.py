"""caffelite.coord_map (pycaffe's caffe.coord_map): maps between NetSpec tops and the Crop
that aligns an FCN's upsampled scores with its input."""
import numpy as np
import pytest

import caffelite as caffe
from caffelite import coord_map as cm
from caffelite import layers as L, params as P


def _fcn():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 64, 64]))
    n.conv1 = L.Convolution(n.data, num_output=4, kernel_size=3, pad=100,
                            weight_filler=dict(type="xavier"))
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.pool1 = L.Pooling(n.relu1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.score = L.Convolution(n.pool1, num_output=2, kernel_size=1)
    n.upscore = L.Deconvolution(n.score, convolution_param=dict(
        num_output=2, kernel_size=4, stride=2, bias_term=False))
    return n


def test_maps_of_single_layers():
    n = _fcn()
    assert cm.coord_map(n.conv1.fn)[1:] == (1, 99)                    # (x + 100 - 1) / 1
    ax, a, b = cm.coord_map(n.pool1.fn)
    assert ax == 1 and a == 0.5 and b == -0.25                        # (x + 0 - 0.5) / 2
    ax, a, b = cm.coord_map(n.upscore.fn)
    assert a == 2 and b == 1.5                                        # 2x + (4-1)/2 - 0
    assert cm.coord_map(n.relu1.fn) == (None, 1, 0)
    with pytest.raises(cm.UndefinedMapException):
        cm.coord_map(L.InnerProduct(n.data, num_output=2).fn)


def test_crop_aligns_the_upsampled_scores_with_the_input():
    n = _fcn()
    # data -> conv1: x + 99; -> pool1: (x + 99) / 2 - 0.25; -> upscore: 2 (...) + 1.5 = x + 100
    ax, a, b = cm.coord_map_from_to(n.upscore, n.data)
    assert ax == 1 and a == 1 and b == -100
    n.out = cm.crop(n.upscore, n.data)
    crop = [lp for lp in n.to_proto().layer if lp.type == "Crop"][0]
    assert crop.crop_param.axis == 2 and list(crop.crop_param.offset) == [100]
    net = caffe.Net(n.to_proto(), caffe.TEST)
    assert net.blobs["out"].shape == (1, 2, 64, 64)


def test_crop_refuses_what_cannot_be_a_crop():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 32, 32]))
    n.half = L.Pooling(n.data, kernel_size=2, stride=2)
    n.wide = L.Convolution(n.data, num_output=1, kernel_size=3, pad=0)
    with pytest.raises(ValueError, match="scale mismatch"):
        cm.crop(n.half, n.data)
    with pytest.raises(ValueError, match="negative offset"):
        cm.crop(n.wide, n.data)                   # wide is smaller: data would be cropped
    n.other = L.Input(shape=dict(dim=[1, 1, 8, 8]))
    with pytest.raises(RuntimeError, match="connected by spatial layers"):
        cm.coord_map_from_to(n.other, n.data)


def test_per_axis_kernels_and_composition_rules():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 20, 20]))
    n.conv = L.Convolution(n.data, num_output=1, kernel_size=[3, 5], dilation=2)
    ax, a, b = cm.coord_map(n.conv.fn)
    np.testing.assert_array_equal(b, [-2, -4])            # extents 5 and 9
    assert cm.compose((None, 1, 0), (2, 3, 4)) == (2, 3, 4)
    with pytest.raises(cm.AxisMismatchException):
        cm.compose((1, 1, 0), (2, 1, 0))
    assert cm.inverse((1, 2.0, 3.0)) == (1, 0.5, -1.5)
