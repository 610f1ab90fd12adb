"""Input layer: shapes given 0, 1 or once per top; tops are the net's inputs; errors."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, make_blobs


def layer_param(n_top, text=""):
    tops = " ".join(f'top: "t{i}"' for i in range(n_top))
    return text_format.Parse(f'name: "in" type: "Input" {tops} input_param {{ {text} }}',
                             caffe_pb2.LayerParameter())


def test_one_shape_for_every_top():
    _, top = build_layer(layer_param(2, "shape { dim: 2 dim: 3 }"), [])
    assert [t.shape for t in top] == [(2, 3), (2, 3)]


def test_shape_per_top():
    _, top = build_layer(layer_param(2, "shape { dim: 4 } shape { dim: 1 dim: 2 dim: 3 }"), [])
    assert [t.shape for t in top] == [(4,), (1, 2, 3)]


def test_no_shape_leaves_tops_to_the_caller():
    layer, top = build_layer(layer_param(1), [])
    assert top[0].shape == ()
    top[0].reshape(3, 2)
    top[0].data[...] = 1.5
    layer.Forward([], top)  # neither reshapes nor overwrites
    assert top[0].shape == (3, 2) and (top[0].data == 1.5).all()


def test_forward_keeps_data_and_backward_is_a_no_op():
    layer, top = build_layer(layer_param(1, "shape { dim: 3 }"), [])
    top[0].data[...] = [1, 2, 3]
    top[0].diff[...] = 4.0
    layer.Forward([], top)
    layer.Backward(top, [], [])
    np.testing.assert_array_equal(top[0].data, [1, 2, 3])


def test_wrong_number_of_shapes():
    with pytest.raises(CaffeliteError, match="in.*Input.*input_param.shape.*3"):
        build_layer(layer_param(3, "shape { dim: 1 } shape { dim: 2 }"), [])


def test_needs_a_top_and_no_bottom():
    with pytest.raises(CaffeliteError, match="in.*Input.*top"):
        build_layer(layer_param(0), [], num_top=0)
    lp = text_format.Parse('name: "in" type: "Input" bottom: "x" top: "t" '
                           'input_param { shape { dim: 1 } }', caffe_pb2.LayerParameter())
    with pytest.raises(CaffeliteError, match="in.*Input.*0 bottom"):
        build_layer(lp, make_blobs([np.zeros(1)]))


def test_tops_are_net_inputs(tmp_path):
    (tmp_path / "net.prototxt").write_text("""
name: "inputs"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "act" type: "TanH" bottom: "data" top: "out" }
layer { name: "quiet" type: "Silence" bottom: "label" }
""")
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    assert net.inputs == ["data", "label"]
    assert net.blobs["data"].data.shape == (2, 3)
    assert net.blobs["label"].data.shape == (2,)
    net.blobs["data"].reshape(5, 3)
    net.blobs["data"].data[...] = 0.5
    out = net.forward()
    assert out["out"].shape == (5, 3)
    np.testing.assert_allclose(out["out"], np.tanh(0.5), rtol=1e-6)
