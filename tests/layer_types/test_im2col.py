"""Im2col layer: column layout c * prod(k) + kernel offset, col2im backward."""
import numpy as np
import pytest

from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.fixtures import replay_net_case
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs


def im2col_param(**kw):
    lp = caffe_pb2.LayerParameter(name="i2c", type="Im2col", bottom=["x"], top=["y"])
    p = lp.convolution_param
    for k, v in kw.items():
        if isinstance(v, (list, tuple)):
            getattr(p, k).extend(v)
        else:
            setattr(p, k, v)
    return lp


def reference_im2col(x, kernel, pad, stride, dilation):
    """Element by element: row c * prod(k) + t (t row-major over the kernel)."""
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    out = [(s + 2 * p - (d * (k - 1) + 1)) // st + 1
           for s, k, p, st, d in zip(spatial, kernel, pad, stride, dilation)]
    taps = list(np.ndindex(*kernel))
    y = np.zeros((N, C * len(taps)) + tuple(out))
    for n in range(N):
        for c in range(C):
            for ti, tap in enumerate(taps):
                for pos in np.ndindex(*out):
                    src = [q * st - p + t * d
                           for q, st, p, t, d in zip(pos, stride, pad, tap, dilation)]
                    if all(0 <= v < s for v, s in zip(src, spatial)):
                        y[(n, c * len(taps) + ti) + pos] = x[(n, c) + tuple(src)]
    return y


def reference_col2im(dy, x_shape, kernel, pad, stride, dilation):
    N, C = x_shape[:2]
    spatial = x_shape[2:]
    taps = list(np.ndindex(*kernel))
    dx = np.zeros(x_shape)
    for n in range(N):
        for c in range(C):
            for ti, tap in enumerate(taps):
                for pos in np.ndindex(*dy.shape[2:]):
                    src = [q * st - p + t * d
                           for q, st, p, t, d in zip(pos, stride, pad, tap, dilation)]
                    if all(0 <= v < s for v, s in zip(src, spatial)):
                        dx[(n, c) + tuple(src)] += dy[(n, c * len(taps) + ti) + pos]
    return dx


CASES = [  # name, shape, params, (kernel, pad, stride, dilation)
    ("pad_stride", (2, 2, 6, 5), dict(kernel_size=[3], stride=[2], pad=[1]),
     ((3, 3), (1, 1), (2, 2), (1, 1))),
    ("hw", (1, 3, 5, 6), dict(kernel_h=2, kernel_w=3, pad_h=1, pad_w=0, stride_h=1,
                              stride_w=2), ((2, 3), (1, 0), (1, 2), (1, 1))),
    ("dilation", (2, 2, 7, 7), dict(kernel_size=[3], dilation=[2], pad=[1]),
     ((3, 3), (1, 1), (1, 1), (2, 2))),
    ("overlap", (1, 2, 4, 4), dict(kernel_size=[3]), ((3, 3), (0, 0), (1, 1), (1, 1))),
    ("1d", (2, 3, 7), dict(kernel_size=[3], stride=[2], pad=[1]), ((3,), (1,), (2,), (1,))),
    ("3d", (1, 2, 3, 4, 3), dict(kernel_size=[2, 3, 2], pad=[0, 1, 1], stride=[1, 2, 1]),
     ((2, 3, 2), (0, 1, 1), (1, 2, 1), (1, 1, 1))),
]


@pytest.mark.parametrize("name,shape,kw,geom", CASES, ids=[c[0] for c in CASES])
def test_forward_backward_match_reference(name, shape, kw, geom):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    bottom = make_blobs([x])
    layer, top = build_layer(im2col_param(**kw), bottom)
    layer.Forward(bottom, top)
    expected = reference_im2col(x, *geom)
    assert top[0].shape == expected.shape
    np.testing.assert_array_equal(top[0].data, expected)
    dy = rng.standard_normal(expected.shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, reference_col2im(dy, shape, *geom),
                               rtol=1e-12, atol=1e-12)


def test_channel_index_is_c_times_taps_plus_offset():
    x = np.arange(2 * 3 * 3, dtype=np.float64).reshape(1, 2, 3, 3)
    bottom = make_blobs([x])
    layer, top = build_layer(im2col_param(kernel_size=[2]), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (1, 8, 2, 2)
    # channel 1, kernel offset (1, 0) -> row 1*4 + 2; at output (0, 1) it reads x[1, 1, 1]
    assert top[0].data[0, 6, 0, 1] == x[0, 1, 1, 1]


def test_channel_axis_2_keeps_batch_axes():
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 4, 5))
    bottom = make_blobs([x])
    layer, top = build_layer(im2col_param(kernel_size=[2], stride=[2], axis=2), bottom)
    layer.Forward(bottom, top)
    assert top[0].shape == (2, 3, 8, 2, 2)
    expected = reference_im2col(x.reshape(6, 2, 4, 5), (2, 2), (0, 0), (2, 2), (1, 1))
    np.testing.assert_array_equal(top[0].data.reshape(6, 8, 2, 2), expected)


def test_follows_a_new_bottom_shape():
    layer, top = build_layer(im2col_param(kernel_size=[3], pad=[1]),
                             make_blobs([np.zeros((1, 2, 4, 4))]))
    x = np.random.default_rng(2).standard_normal((3, 2, 5, 6))
    bottom = make_blobs([x])
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data,
                                  reference_im2col(x, (3, 3), (1, 1), (1, 1), (1, 1)))


@pytest.mark.parametrize("kw", [dict(kernel_size=[3], stride=[2], pad=[1]),
                                dict(kernel_size=[2], dilation=[2])])
def test_gradients(kw):
    bottom = make_blobs([np.random.default_rng(3).standard_normal((2, 2, 5, 4))])
    layer, top = build_layer(im2col_param(**kw), bottom)
    check_gradients(layer, bottom, top)


def test_float32():
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 5))
    bottom = make_blobs([x], dtype=np.float32)
    layer, top = build_layer(im2col_param(kernel_size=[3], pad=[1]), bottom, dtype=np.float32)
    layer.Forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_array_equal(top[0].data, reference_im2col(
        x.astype(np.float32).astype(np.float64), (3, 3), (1, 1), (1, 1), (1, 1)))


def test_propagate_down_false():
    bottom = make_blobs([np.random.default_rng(5).standard_normal((1, 2, 4, 4))])
    layer, top = build_layer(im2col_param(kernel_size=[2]), bottom)
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    bottom[0].diff[...] = 5.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 5.0).all()


ERROR_CASES = [
    ("kernel_size must be specified", (1, 2, 4, 4), dict()),
    (r"nonzero: kernel \(0, 0\)", (1, 2, 4, 4), dict(kernel_size=[0])),
    ("kernel_size specified 3 times", (1, 2, 4, 4), dict(kernel_size=[2, 2, 2])),
    ("stride_h/stride_w can only be used for 2-D", (1, 2, 4), dict(kernel_size=[2],
                                                                   stride_h=2, stride_w=2)),
    (r"\(1, 2, 2, 2\) is too small for kernel extent \(5, 5\)", (1, 2, 2, 2),
     dict(kernel_size=[3], dilation=[2])),
    ("at least one spatial axis", (2, 3), dict(kernel_size=[1], axis=1)),
    ("axis", (1, 2, 4, 4), dict(kernel_size=[2], axis=4)),
]


@pytest.mark.parametrize("message,shape,kw", ERROR_CASES)
def test_bad_parameters_raise(message, shape, kw):
    with pytest.raises(CaffeliteError, match=rf"layer 'i2c' \(type Im2col\).*{message}"):
        build_layer(im2col_param(**kw), make_blobs([np.zeros(shape)]))


def test_in_place_is_refused():
    lp = im2col_param(kernel_size=[2])
    bottom = make_blobs([np.zeros((1, 1, 3, 3))])
    from caffelite.layer import create_layer
    layer = create_layer(lp)
    with pytest.raises(CaffeliteError, match="i2c.*in-place"):
        layer.SetUp(bottom, bottom)


def test_caffe_fixture(fixtures_dir):
    replay_net_case(fixtures_dir / "layers" / "im2col")
