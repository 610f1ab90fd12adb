"""Silence layer: swallows bottoms, backward zeroes the diffs asked for, hides net outputs."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(n_bottom):
    bottoms = " ".join(f'bottom: "x{i}"' for i in range(n_bottom))
    return text_format.Parse(f'name: "quiet" type: "Silence" {bottoms}',
                             caffe_pb2.LayerParameter())


def test_forward_leaves_bottoms_alone():
    xs = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    bottom = make_blobs(xs)
    layer, top = build_layer(layer_param(2), bottom, num_top=0)
    assert top == []
    assert layer.Forward(bottom, top) == 0.0
    np.testing.assert_array_equal(bottom[0].data, xs[0])
    np.testing.assert_array_equal(bottom[1].data, xs[1])


def test_backward_zeroes_only_propagated_bottoms():
    bottom = make_blobs([np.ones((2, 3)), np.ones(4), np.ones(1)])
    layer, top = build_layer(layer_param(3), bottom, num_top=0)
    for b in bottom:
        b.diff[...] = 5.0
    layer.Backward(top, [True, False, True], bottom)
    assert (bottom[0].diff == 0).all()
    assert (bottom[1].diff == 5.0).all()
    assert (bottom[2].diff == 0).all()


def test_gradient_is_zero():
    bottom = make_blobs([np.random.default_rng(0).standard_normal((2, 3))])
    layer, top = build_layer(layer_param(1), bottom, num_top=0)
    grads = check_gradients(layer, bottom, top)
    assert (grads[0] == 0).all()


def test_needs_a_bottom():
    with pytest.raises(CaffeliteError, match="quiet.*Silence.*at least 1 bottom"):
        build_layer(layer_param(0), [], num_top=0)


def test_rejects_tops():
    lp = text_format.Parse('name: "quiet" type: "Silence" bottom: "x" top: "y"',
                           caffe_pb2.LayerParameter())
    with pytest.raises(CaffeliteError, match="quiet.*Silence.*0 top"):
        build_layer(lp, make_blobs([np.zeros(2)]))


def test_in_a_net(tmp_path):
    (tmp_path / "net.prototxt").write_text("""
name: "silenced" force_backward: true
layer { name: "data" type: "Input" top: "a" top: "b"
        input_param { shape { dim: 2 dim: 3 } } }
layer { name: "act" type: "TanH" bottom: "a" top: "out" }
layer { name: "quiet" type: "Silence" bottom: "b" }
""")
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    assert net.outputs == ["out"]
    net.blobs["b"].diff[...] = 3.0
    net.forward()
    net.blobs["out"].diff[...] = 1.0
    net.backward()
    assert (net.blobs["b"].diff == 0).all()


def test_v1_name(tmp_path):
    (tmp_path / "net.prototxt").write_text("""
name: "v1" input: "a" input_dim: 2 input_dim: 3 input_dim: 1 input_dim: 1
layers { name: "quiet" type: SILENCE bottom: "a" }
""")
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    assert [l.type for l in net.layers][-1] == "Silence"
    assert net.outputs == []
