"""Fillers: each distribution's rule (reference §2.9), reproducibility under
caffe.set_random_seed, and errors for unknown or misused fillers."""
import numpy as np
import pytest

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.fillers import filler_values
from caffelite.proto import caffe_pb2


def filler(**kw):
    return caffe_pb2.FillerParameter(**kw)


def draw(shape, **kw):
    caffe.set_random_seed(123)
    return filler_values(filler(**kw), shape, np.float32)


def test_constant_and_default_is_constant_zero():
    assert np.all(draw((3, 4), type="constant", value=2.5) == 2.5)
    assert np.all(filler_values(caffe_pb2.FillerParameter(), (5,)) == 0)


def test_uniform_range_and_moments():
    v = draw((200, 100), type="uniform", min=-2, max=3)
    assert v.dtype == np.float32 and v.min() >= -2 and v.max() <= 3
    assert abs(v.mean() - 0.5) < 0.05


def test_gaussian_and_sparse_gaussian():
    v = draw((400, 100), type="gaussian", mean=1, std=2)
    assert abs(v.mean() - 1) < 0.05 and abs(v.std() - 2) < 0.05
    s = draw((50, 400), type="gaussian", std=1, sparse=10)
    # each entry survives with probability sparse / num_outputs = 10 / 50
    assert abs((s != 0).mean() - 0.2) < 0.02
    # a 1-D blob (a bias) is accepted as in Caffe: shape(0) stands for the outputs
    b = draw((50,), type="gaussian", std=1, sparse=50)
    assert (b != 0).all()


def test_positive_unitball_rows_sum_to_one():
    v = draw((6, 3, 2, 2), type="positive_unitball")
    assert np.all(v >= 0)
    np.testing.assert_allclose(v.reshape(6, -1).sum(axis=1), 1, rtol=1e-5)


SHAPE = (40, 30, 5, 5)
FANS = {"FAN_IN": 30 * 25, "FAN_OUT": 40 * 25, "AVERAGE": (30 * 25 + 40 * 25) / 2}


@pytest.mark.parametrize("norm", sorted(FANS))
def test_xavier_bounds_follow_the_chosen_fan(norm):
    vn = caffe_pb2.FillerParameter.VarianceNorm.Value(norm)
    x = draw(SHAPE, type="xavier", variance_norm=vn)
    a = np.sqrt(3.0 / FANS[norm])
    assert x.min() >= -a and x.max() <= a and x.max() > 0.99 * a


@pytest.mark.parametrize("norm", sorted(FANS))
def test_msra_std_follows_the_chosen_fan(norm):
    vn = caffe_pb2.FillerParameter.VarianceNorm.Value(norm)
    m = draw(SHAPE, type="msra", variance_norm=vn)
    expected = np.sqrt(2.0 / FANS[norm])
    assert abs(m.mean()) < 0.02 * expected * 10 and abs(m.std() - expected) < 0.02 * expected


def test_bilinear_kernel_matches_caffe():
    k = draw((2, 1, 4, 4), type="bilinear")
    w1 = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(k[0, 0], np.outer(w1, w1), rtol=1e-6)
    np.testing.assert_array_equal(k[0, 0], k[1, 0])
    k3 = draw((1, 1, 3, 3), type="bilinear")  # Caffe's centre for odd k with even f
    w3 = 1 - np.abs(np.arange(3) / 2.0 - 0.75)
    np.testing.assert_allclose(k3[0, 0], np.outer(w3, w3), rtol=1e-6)
    with pytest.raises(CaffeliteError, match="square kernel"):
        draw((1, 1, 3, 4), type="bilinear")


def test_seed_reproduces_a_net_and_different_seeds_differ(tmp_path):
    text = """layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "c" type: "Convolution" bottom: "d" top: "c"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "msra" } bias_filler { type: "uniform" } } }"""
    (tmp_path / "n.prototxt").write_text(text)
    nets = []
    for seed in (5, 5, 6):
        caffe.set_random_seed(seed)
        nets.append(caffe.Net(str(tmp_path / "n.prototxt"), caffe.TEST))
    a, b, c = (n.params["c"][0].data for n in nets)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_filler_and_sparse_outside_gaussian():
    with pytest.raises(CaffeliteError, match="unknown filler type 'fancy'"):
        draw((2, 2), type="fancy")
    with pytest.raises(CaffeliteError, match="sparse"):
        draw((2, 2), type="uniform", sparse=1)
