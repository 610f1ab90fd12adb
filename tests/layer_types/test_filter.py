"""Filter: selection against a loop reference, the setup-time full-N reshape, gradients,
no gradient to the selector, errors."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def layer_param(num=1):
    bottoms = " ".join(f'bottom: "x{i}"' for i in range(num))
    tops = " ".join(f'top: "y{i}"' for i in range(num))
    return text_format.Parse(f'name: "flt" type: "Filter" {bottoms} bottom: "sel" {tops}',
                             caffe_pb2.LayerParameter())


def reference(x, sel):
    return np.array([x[i] for i in range(len(sel)) if sel.ravel()[i] != 0]).reshape(
        (-1,) + x.shape[1:])


def setup(xs, sel):
    bottom = make_blobs(list(xs) + [sel])
    layer, top = build_layer(layer_param(len(xs)), bottom)
    return layer, bottom, top


def test_forward_matches_reference_and_setup_keeps_full_n():
    rng = np.random.default_rng(0)
    x0, x1 = rng.standard_normal((5, 3)), rng.standard_normal((5, 2, 2))
    sel = np.array([1.0, 0.0, -2.0, 0.0, 0.5])
    layer, bottom, top = setup([x0, x1], sel)
    assert top[0].shape == (5, 3) and top[1].shape == (5, 2, 2)   # first reshape: full N
    layer.Forward(bottom, top)
    assert top[0].shape == (3, 3) and top[1].shape == (3, 2, 2)
    np.testing.assert_array_equal(top[0].data, reference(x0, sel))
    np.testing.assert_array_equal(top[1].data, reference(x1, sel))


def test_selector_may_have_singleton_axes():
    x = np.arange(12.0).reshape(4, 3)
    sel = np.array([0, 1, 1, 0], dtype=np.float64).reshape(4, 1, 1)
    layer, bottom, top = setup([x], sel)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x[1:3])


def test_none_selected_gives_empty_tops_and_zero_gradient():
    x = np.ones((3, 2))
    layer, bottom, top = setup([x], np.zeros(3))
    layer.Forward(bottom, top)
    assert top[0].shape == (0, 2)
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [True, False], bottom)
    assert (bottom[0].diff == 0).all()


def test_backward_copies_to_kept_items_and_zeroes_the_rest():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 2))
    sel = np.array([0.0, 1.0, 0.0, 1.0])
    layer, bottom, top = setup([x], sel)
    layer.Forward(bottom, top)
    dy = rng.standard_normal((2, 2))
    top[0].diff[...] = dy
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [[0, 0], dy[0], [0, 0], dy[1]])


def test_gradient():
    rng = np.random.default_rng(2)
    x0, x1 = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer, bottom, top = setup([x0, x1], np.array([1.0, 0.0, 1.0, 1.0]))
    check_gradients(layer, bottom, top, check_bottom=[0, 1])


def test_propagate_down_false_leaves_diff():
    layer, bottom, top = setup([np.ones((3, 2)), np.ones((3, 1))], np.array([1.0, 0.0, 1.0]))
    layer.Forward(bottom, top)
    for b in bottom:
        b.diff[...] = 7.0
    for t in top:
        t.diff[...] = 1.0
    layer.Backward(top, [False, True, False], bottom)
    assert (bottom[0].diff == 7.0).all()
    np.testing.assert_array_equal(bottom[1].diff.ravel(), [1, 0, 1])


def test_selector_gradient_is_an_error_and_never_forced():
    layer, bottom, top = setup([np.ones((3, 2))], np.array([1.0, 0.0, 1.0]))
    layer.Forward(bottom, top)
    with pytest.raises(CaffeliteError, match=r"'flt'.*Filter.*selector"):
        layer.Backward(top, [True, True], bottom)
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)


def test_force_backward_net_leaves_the_selector_alone():
    net_param = text_format.Parse("""
        force_backward: true
        layer { name: "in" type: "Input" top: "x" top: "sel"
                input_param { shape { dim: 4 dim: 2 } shape { dim: 4 } } }
        layer { name: "flt" type: "Filter" bottom: "x" bottom: "sel" top: "y" }
        layer { name: "red" type: "Reduction" bottom: "y" top: "loss" loss_weight: 1
                reduction_param { operation: SUMSQ } }""", caffe_pb2.NetParameter())
    net = caffe.Net(net_param, caffe.TEST)
    x = np.arange(8.0).reshape(4, 2)
    net.blobs["x"].data[...] = x
    net.blobs["sel"].data[...] = [0, 1, 1, 0]
    net.forward()
    np.testing.assert_allclose(net.blobs["loss"].data, (x[1:3] ** 2).sum())
    net.blobs["sel"].diff[...] = 5.0
    net.backward()
    np.testing.assert_allclose(net.blobs["x"].diff, 2 * x * np.array([[0], [1], [1], [0]]))
    assert (net.blobs["sel"].diff == 5.0).all()


def test_bad_shapes_are_errors():
    with pytest.raises(CaffeliteError, match=r"'flt'.*selector.*\(3, 2\)"):
        setup([np.ones((3, 2))], np.ones((3, 2)))
    with pytest.raises(CaffeliteError, match=r"'flt'.*bottom 0 of shape \(4, 2\).*\(3,\)"):
        setup([np.ones((4, 2))], np.ones(3))
    lp = layer_param(2)
    del lp.top[1]
    with pytest.raises(CaffeliteError, match=r"'flt'.*3 bottoms, 1 tops"):
        build_layer(lp, make_blobs([np.ones((3, 2)), np.ones((3, 2)), np.ones(3)]))
