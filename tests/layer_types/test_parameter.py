"""Parameter: a zero-initialised blob whose data and diff the top shares, in a layer and
in a net. (The numeric gradient checker cannot be used here: it clears the param diffs,
which are the top's diffs, after writing the top weights; the net test checks the
gradient instead.)"""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer


def layer_param(dims=(2, 3)):
    shape = " ".join(f"dim: {d}" for d in dims)
    return text_format.Parse(f'name: "p" type: "Parameter" top: "w" '
                             f'parameter_param {{ shape {{ {shape} }} }}',
                             caffe_pb2.LayerParameter())


@pytest.mark.parametrize("dims", [(2, 3), (4,), ()])
def test_blob_is_zero_and_shared_with_the_top(dims):
    layer, top = build_layer(layer_param(dims), [])
    assert len(layer.blobs) == 1
    assert layer.blobs[0].shape == dims == top[0].shape
    assert (layer.blobs[0].data == 0).all()
    layer.blobs[0].data[...] = 3.0
    layer.Forward([], top)
    assert (top[0].data == 3.0).all()
    top[0].diff[...] = 2.0                      # what a consumer's backward writes
    layer.Backward(top, [], [])
    assert (layer.blobs[0].diff == 2.0).all()


def test_replaced_blob_is_reshared_on_forward():
    layer, top = build_layer(layer_param(), [])
    layer.blobs[0] = caffe.Blob((2, 3))
    layer.blobs[0].data[...] = 5.0
    layer.Forward([], top)
    assert (top[0].data == 5.0).all()


def test_preloaded_blob_is_used_and_checked():
    lp = layer_param()
    bp = lp.blobs.add()
    bp.shape.dim.extend([2, 3])
    bp.data.extend(range(6))
    layer, top = build_layer(lp, [])
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, np.arange(6.0).reshape(2, 3))
    lp.ClearField("blobs")
    bp = lp.blobs.add()
    bp.shape.dim.extend([5])
    bp.data.extend(range(5))
    with pytest.raises(CaffeliteError, match=r"'p'.*Parameter.*\(5,\).*\(2, 3\)"):
        build_layer(lp, [])


def test_negative_dim_is_an_error():
    with pytest.raises(CaffeliteError, match=r"'p'.*parameter_param.shape"):
        build_layer(layer_param((2, -1)), [])


def test_in_a_net_the_gradient_lands_in_the_param():
    net_param = text_format.Parse("""
        layer { name: "p" type: "Parameter" top: "w" parameter_param { shape { dim: 2 dim: 3 } } }
        layer { name: "red" type: "Reduction" bottom: "w" top: "loss" loss_weight: 1
                reduction_param { operation: SUMSQ } }""", caffe_pb2.NetParameter())
    net = caffe.Net(net_param, caffe.TRAIN)
    w = np.arange(6.0).reshape(2, 3) - 2
    net.params["p"][0].data[...] = w
    net.forward()
    np.testing.assert_allclose(net.blobs["loss"].data, (w ** 2).sum(), rtol=1e-6)
    net.backward()
    np.testing.assert_allclose(net.params["p"][0].diff, 2 * w, rtol=1e-6)
