"""Crop: axis/offset rules, window copy, backward into the window only, ref gets nothing."""
import numpy as np
import pytest

from caffelite.errors import CaffeliteError
from caffelite.layer import create_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def crop_param(axis=None, offset=()):
    lp = caffe_pb2.LayerParameter(name="crop", type="Crop", bottom=["a", "ref"], top=["y"])
    if axis is not None:
        lp.crop_param.axis = axis
    lp.crop_param.offset.extend(offset)
    return lp


def reference_crop(a, ref_shape, axis, offsets):
    """Index by index: top[i] = a[i + o] with per-axis offsets o."""
    n = a.ndim
    axis %= n
    if not offsets:
        offs = [0] * n
    elif len(offsets) == 1:
        offs = [0] * axis + [offsets[0]] * (n - axis)
    else:
        offs = [0] * axis + list(offsets)
    shape = a.shape[:axis] + tuple(ref_shape[axis:n])
    y = np.empty(shape)
    for idx in np.ndindex(*shape):
        y[idx] = a[tuple(i + o for i, o in zip(idx, offs))]
    return y


CASES = [  # a shape, ref shape, axis (None = default 2), offsets
    ((2, 3, 8, 9), (2, 3, 5, 4), None, (1, 2)),
    ((2, 3, 8, 9), (1, 1, 5, 4), None, (3,)),          # one offset for every cropped axis
    ((2, 3, 8, 9), (7, 7, 5, 4), None, ()),            # no offset: the top-left window
    ((4, 5, 6), (2, 3, 6), 0, (1, 2, 0)),              # crop the batch axis too
    ((4, 5, 6), (9, 3, 2), 1, (2,)),
    ((2, 3, 4, 5), (2, 3, 4, 2), -1, (3,)),            # negative axis
    ((2, 3, 4, 5), (2, 3, 4, 5), 2, ()),               # same size: identity
]


@pytest.mark.parametrize("a_shape,ref_shape,axis,offsets", CASES)
def test_forward_backward_match_reference(a_shape, ref_shape, axis, offsets):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape)
    bottom = make_blobs([a, np.zeros(ref_shape)])
    layer, top = build_layer(crop_param(axis, offsets), bottom)
    layer.Forward(bottom, top)
    expected = reference_crop(a, ref_shape, 2 if axis is None else axis, offsets)
    assert top[0].shape == expected.shape
    np.testing.assert_array_equal(top[0].data, expected)
    # backward: the adjoint of the copy (zeros outside the window)
    dy = rng.standard_normal(expected.shape)
    top[0].diff[...] = dy
    bottom[0].diff[...] = 7.0
    bottom[1].diff[...] = 3.0
    layer.Backward(top, [True, True], bottom)
    probe = rng.standard_normal(a_shape)
    np.testing.assert_allclose(np.sum(bottom[0].diff * probe),
                               np.sum(dy * reference_crop(probe, ref_shape,
                                                          2 if axis is None else axis,
                                                          offsets)), rtol=1e-12)
    assert (bottom[1].diff == 3.0).all()        # Caffe writes nothing to the reference


def test_window_position():
    a = np.arange(6 * 7, dtype=np.float64).reshape(1, 1, 6, 7)
    bottom = make_blobs([a, np.zeros((1, 1, 2, 3))])
    layer, top = build_layer(crop_param(offset=(3, 1)), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data[0, 0], a[0, 0, 3:5, 1:4])
    top[0].diff[...] = 1.0
    layer.Backward(top, [True, False], bottom)
    expected = np.zeros_like(a)
    expected[0, 0, 3:5, 1:4] = 1.0
    np.testing.assert_array_equal(bottom[0].diff, expected)


def test_follows_new_shapes():
    layer, top = build_layer(crop_param(offset=(1,)), make_blobs([np.zeros((1, 1, 5, 5)),
                                                                  np.zeros((1, 1, 3, 3))]))
    a = np.random.default_rng(1).standard_normal((2, 2, 7, 6))
    bottom = make_blobs([a, np.zeros((2, 2, 4, 2))])
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, a[:, :, 1:5, 1:3])


def test_gradient():
    rng = np.random.default_rng(2)
    bottom = make_blobs([rng.standard_normal((2, 2, 4, 5)), np.zeros((2, 2, 2, 3))])
    layer, top = build_layer(crop_param(offset=(1, 2)), bottom)
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_propagate_down_false():
    bottom = make_blobs([np.ones((1, 2, 4, 4)), np.zeros((1, 2, 2, 2))])
    layer, top = build_layer(crop_param(offset=(1,)), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 5.0
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 5.0).all()


def test_reference_is_not_forced_to_backward():
    layer = create_layer(crop_param())
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)


def test_float32():
    a = np.random.default_rng(3).standard_normal((1, 2, 5, 5))
    bottom = make_blobs([a, np.zeros((1, 2, 3, 3))], dtype=np.float32)
    layer, top = build_layer(crop_param(offset=(2,)), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_array_equal(top[0].data, a.astype(np.float32)[:, :, 2:, 2:])


ERROR_CASES = [
    (r"crop for axis 3 is out of bounds: offset 2 \+ reference size 4 > bottom\[0\] size 5",
     (2, 3, 8, 5), (2, 3, 5, 4), None, (1, 2)),
    (r"crop for axis 2 is out of bounds: offset 0 \+ reference size 9 > bottom\[0\] size 8",
     (2, 3, 8, 9), (2, 3, 9, 4), None, ()),
    (r"crop for axis 0 is out of bounds", (2, 3, 8, 9), (3, 3, 5, 4), 0, ()),
    (r"offset is given 3 times.*2 axes from axis 2", (2, 3, 8, 9), (2, 3, 5, 4), None,
     (1, 1, 1)),
    (r"crop_param.axis 4 out of range", (2, 3, 8, 9), (2, 3, 5, 4), 4, ()),
    (r"bottom\[1\] shape \(2, 3, 5\) has fewer axes", (2, 3, 8, 9), (2, 3, 5), None, ()),
]


@pytest.mark.parametrize("message,a_shape,ref_shape,axis,offsets", ERROR_CASES)
def test_bad_parameters_raise(message, a_shape, ref_shape, axis, offsets):
    with pytest.raises(CaffeliteError, match=rf"layer 'crop' \(type Crop\).*{message}"):
        build_layer(crop_param(axis, offsets),
                    make_blobs([np.zeros(a_shape), np.zeros(ref_shape)]))


def test_needs_two_bottoms():
    with pytest.raises(CaffeliteError, match=r"crop.*takes 2 bottom"):
        build_layer(crop_param(), make_blobs([np.zeros((1, 1, 2, 2))]))


def test_caffe_fixture(fixtures_dir):
    net = replay_net_case(fixtures_dir / "layers" / "crop")
    assert not net.blobs["ref"].diff.any()
