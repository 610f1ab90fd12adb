"""Dropout layer: Bernoulli mask with 1/(1-ratio) scaling in TRAIN, identity in TEST."""
import numpy as np
import pytest

from caffelite import backend
from caffelite.blob import Blob
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def dropout_param(phase=caffe_pb2.TRAIN, ratio=None, top="y"):
    lp = caffe_pb2.LayerParameter(name="drop", type="Dropout", bottom=["x"], top=[top])
    lp.phase = phase
    if ratio is not None:
        lp.dropout_param.dropout_ratio = ratio
    return lp


def test_train_forward_and_backward_use_one_mask():
    backend.set_random_seed(11)
    x = np.random.default_rng(0).standard_normal((4, 5, 30, 30)) + 3.0   # no zeros in x
    bottom = make_blobs([x])
    layer, top = build_layer(dropout_param(ratio=0.3), bottom)
    layer.Forward(bottom, top)
    y = top[0].data
    kept = y != 0
    scale = 1.0 / (1.0 - float(np.float32(0.3)))   # Caffe: 1. / (1. - float ratio)
    np.testing.assert_allclose(y[kept], x[kept] * scale, rtol=1e-12)
    assert abs(kept.mean() - 0.7) < 0.02                 # 18000 Bernoulli(0.7) draws
    dy = np.random.default_rng(1).standard_normal(x.shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, dy * kept * scale, rtol=1e-12)


def test_default_ratio_is_half_and_mask_is_redrawn_each_forward():
    backend.set_random_seed(12)
    bottom = make_blobs([np.ones((100, 100))])
    layer, top = build_layer(dropout_param(), bottom)
    assert layer.ratio == 0.5
    layer.Forward(bottom, top)
    first = top[0].data.copy()
    assert set(np.unique(first)) == {0.0, 2.0}
    layer.Forward(bottom, top)
    assert (top[0].data != first).any()


def test_seed_reproduces_the_mask():
    x = np.random.default_rng(2).standard_normal((3, 7, 5))
    outs = []
    for _ in range(2):
        backend.set_random_seed(1701)
        bottom = make_blobs([x], dtype=np.float32)
        layer, top = build_layer(dropout_param(ratio=0.4), bottom, dtype=np.float32)
        layer.Forward(bottom, top)
        assert top[0].data.dtype == np.float32
        outs.append(top[0].data.copy())
    np.testing.assert_array_equal(outs[0], outs[1])


def test_train_in_place():
    backend.set_random_seed(13)
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)) + 5.0
    blob = make_blobs([x])[0]
    layer, _ = build_layer(dropout_param(ratio=0.25, top="x"), [blob])
    layer.SetUp([blob], [blob])
    layer.Forward([blob], [blob])
    kept = blob.data != 0
    np.testing.assert_allclose(blob.data[kept], x[kept] / 0.75, rtol=1e-6)
    blob.diff[...] = 1.0
    layer.Backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, kept / 0.75, rtol=1e-6)


def test_ratio_zero_is_identity_in_train():
    x = np.random.default_rng(4).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(dropout_param(ratio=0.0), bottom)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)


@pytest.mark.parametrize("in_place", [False, True])
def test_test_phase_is_identity(in_place):
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    dy = np.random.default_rng(6).standard_normal((2, 3, 4))
    bottom = make_blobs([x])
    top = bottom if in_place else [Blob((), dtype=np.float64, xp=np)]
    layer, _ = build_layer(dropout_param(caffe_pb2.TEST, ratio=0.7), bottom)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, dy)


def _reseed_each_forward(layer, seed=5):
    """Caffe's GradientChecker reseeds before every Forward so dropout draws one mask; ours
    does not, so the layer's forward reseeds itself here."""
    inner = layer.forward

    def forward(bottom, top):
        backend.set_random_seed(seed)
        inner(bottom, top)
    layer.forward = forward


@pytest.mark.parametrize("phase", [caffe_pb2.TRAIN, caffe_pb2.TEST], ids=["TRAIN", "TEST"])
def test_gradients(phase):
    bottom = make_blobs([np.random.default_rng(7).standard_normal((2, 3, 4, 5))])
    layer, top = build_layer(dropout_param(phase, ratio=0.4), bottom)
    _reseed_each_forward(layer)
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("phase", [caffe_pb2.TRAIN, caffe_pb2.TEST], ids=["TRAIN", "TEST"])
def test_propagate_down_false(phase):
    bottom = make_blobs([np.ones((2, 3))])
    layer, top = build_layer(dropout_param(phase), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 9.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 9.0).all()


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_bad_ratio_raises(ratio):
    with pytest.raises(CaffeliteError,
                       match=r"layer 'drop' \(type Dropout\).*dropout_param.dropout_ratio"):
        build_layer(dropout_param(ratio=ratio), make_blobs([np.ones((2, 2))]))


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "dropout_test")
