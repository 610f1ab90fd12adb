"""Power layer: forward vs (shift + scale x)^power, the power*scale == 0 case, gradients,
in place, Caffe fixture."""
import numpy as np
import pytest
from google.protobuf import text_format

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

from layer_case import assert_in_place_matches, replay


def layer_param(power=None, scale=None, shift=None):
    fields = " ".join(f"{k}: {v}" for k, v in
                      (("power", power), ("scale", scale), ("shift", shift)) if v is not None)
    return text_format.Parse('name: "pow" type: "Power" bottom: "x" top: "y" '
                             f"power_param {{ {fields} }}", caffe_pb2.LayerParameter())




def reference(x, p, a, b):
    return np.array([(b + a * v) ** p for v in np.ravel(x)]).reshape(np.shape(x))


def positive_base(shape, a, b, seed):
    """x with shift + scale * x in [0.2, 2], so every power is defined and smooth."""
    base = np.random.default_rng(seed).uniform(0.2, 2.0, shape)
    return (base - b) / a


# (power, scale, shift): defaults, the squared and shift-free special paths, the general one
SETTINGS = [(1.0, 1.0, 0.0), (2.0, 0.5, 1.0), (2.0, -1.5, 0.0), (3.0, 2.0, 0.0),
            (-1.5, 0.7, 0.4), (0.5, 1.0, 0.3), (1.0, -2.0, 0.5), (0.37, 3.0, -1.0)]


@pytest.mark.parametrize("p,a,b", SETTINGS)
@pytest.mark.parametrize("shape", [(2, 3, 4), ()])
def test_forward(p, a, b, shape):
    x = positive_base(shape, a, b, 0)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(p, a, b), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, p, a, b), rtol=1e-6)


def test_defaults_are_identity():
    x = np.random.default_rng(1).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)


@pytest.mark.parametrize("p,a,b,value", [(0.0, 2.0, 3.0, 1.0), (2.0, 0.0, 3.0, 9.0),
                                         (0.0, 0.0, 0.0, 1.0), (-1.0, 0.0, 4.0, 0.25)])
def test_power_times_scale_zero_gives_a_constant_and_zero_gradient(p, a, b, value):
    x = np.random.default_rng(2).standard_normal((2, 5))
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(p, a, b), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, np.full((2, 5), value), rtol=1e-7)
    top[0].diff[...] = 3.0
    bottom[0].diff[...] = 5.0
    layer.Backward(top, [True], bottom)
    assert (bottom[0].diff == 0).all()


@pytest.mark.parametrize("p,a,b", SETTINGS)
def test_gradient(p, a, b):
    x = positive_base((2, 3, 4), a, b, 3)
    bottom = make_blobs([x])
    layer, top = build_layer(layer_param(p, a, b), bottom)
    check_gradients(layer, bottom, top)


def test_gradient_where_the_base_is_zero():
    # Caffe computes power * y / x here, which is 0/0; the derivative is 0 for power > 1
    bottom = make_blobs([np.array([0.0, 1.0, -2.0])])
    layer, top = build_layer(layer_param(3.0, 1.0, 0.0), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, [0.0, 3.0, 12.0])


def test_propagate_down_false_leaves_diff():
    bottom = make_blobs([positive_base((3, 4), 0.5, 1.0, 4)])
    layer, top = build_layer(layer_param(2.0, 0.5, 1.0), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 7.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 7.0).all()


@pytest.mark.parametrize("p,a,b", SETTINGS + [(0.0, 1.0, 2.0)])
def test_in_place_matches_out_of_place(p, a, b):
    x = positive_base((3, 5), a, b, 5)
    dy = np.random.default_rng(6).standard_normal(x.shape)
    assert_in_place_matches(layer_param(p, a, b), x, dy)


def test_float32_stays_float32():
    bottom = make_blobs([np.array([0.5, 1.0, 2.0])], dtype=np.float32)
    layer, top = build_layer(layer_param(1.5, 2.0, 0.0), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    assert top[0].data.dtype == np.float32 and bottom[0].diff.dtype == np.float32
    np.testing.assert_allclose(top[0].data, [1.0, 2 ** 1.5, 8.0], rtol=1e-6)


def test_blob_counts_are_checked():
    lp = layer_param()
    lp.bottom.append("z")
    with pytest.raises(CaffeliteError, match="pow.*Power.*bottom"):
        build_layer(lp, make_blobs([np.zeros(2), np.zeros(2)]))


def test_v1_name_is_registered():
    from caffelite.layer import _V1_NAMES
    assert _V1_NAMES["POWER"] == "Power"


def test_fixture_power(fixtures_dir):
    replay(fixtures_dir, "power")
