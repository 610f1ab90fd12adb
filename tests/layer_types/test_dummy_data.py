"""DummyData layer: shapes (new and legacy), fillers, Caffe's refill rule, errors, in a net."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer


def layer_param(n_top, text):
    tops = " ".join(f'top: "y{i}"' for i in range(n_top))
    return text_format.Parse(f'name: "dd" type: "DummyData" {tops} '
                             f'dummy_data_param {{ {text} }}', caffe_pb2.LayerParameter())


def build(n_top, text, dtype=np.float64):
    return build_layer(layer_param(n_top, text), [], dtype=dtype)


def test_default_is_constant_zero_with_one_shape_for_all_tops():
    layer, top = build(2, "shape { dim: 2 dim: 3 }")
    for t in top:
        assert t.shape == (2, 3)
        t.data[...] = 5.0  # not refilled below
    layer.Forward([], top)
    assert all((t.data == 5.0).all() for t in top)


def test_shape_per_top():
    _, top = build(3, "shape { dim: 2 } shape { dim: 1 dim: 4 } shape { }")
    assert [t.shape for t in top] == [(2,), (1, 4), ()]


def test_legacy_dims():
    _, top = build(2, "num: 2 channels: 3 channels: 1 height: 4 width: 5 width: 1")
    assert [t.shape for t in top] == [(2, 3, 4, 5), (2, 1, 4, 1)]


def test_constant_filler_filled_once_at_setup():
    layer, top = build(1, 'shape { dim: 4 } data_filler { type: "constant" value: 2.5 }')
    np.testing.assert_array_equal(top[0].data, np.full(4, 2.5))
    top[0].data[...] = -1.0
    layer.Forward([], top)
    layer.Forward([], top)
    assert (top[0].data == -1.0).all()


def test_random_filler_refilled_every_forward():
    caffe.set_random_seed(3)
    layer, top = build(1, 'shape { dim: 200 } data_filler { type: "uniform" min: 1 max: 2 }')
    layer.Forward([], top)
    first = top[0].data.copy()
    layer.Forward([], top)
    second = top[0].data.copy()
    assert not np.array_equal(first, second)
    for v in (first, second):
        assert (v >= 1).all() and (v <= 2).all() and 1.3 < v.mean() < 1.7


def test_random_fill_follows_seed():
    def draw():
        caffe.set_random_seed(17)
        layer, top = build(1, 'shape { dim: 5 } data_filler { type: "gaussian" std: 1 }')
        layer.Forward([], top)
        return top[0].data.copy()
    np.testing.assert_array_equal(draw(), draw())


def test_setup_does_not_consume_random_numbers():
    caffe.set_random_seed(5)
    layer, top = build(1, 'shape { dim: 6 } data_filler { type: "gaussian" std: 1 }')
    layer.Forward([], top)
    caffe.set_random_seed(5)
    ref = caffe_pb2.FillerParameter(type="gaussian", std=1)
    from caffelite.fillers import filler_values
    np.testing.assert_allclose(top[0].data, filler_values(ref, (6,)))


def test_one_filler_per_top_mixes_rules():
    layer, top = build(2, 'shape { dim: 3 } '
                          'data_filler { type: "constant" value: 1 } '
                          'data_filler { type: "gaussian" std: 1 }')
    assert (top[0].data == 1).all()
    top[0].data[...] = 7.0
    top[1].data[...] = 7.0
    layer.Forward([], top)
    assert (top[0].data == 7.0).all()
    assert not (top[1].data == 7.0).any()


def test_float32_tops():
    _, top = build(1, 'shape { dim: 3 } data_filler { type: "constant" value: 0.1 }',
                   dtype=np.float32)
    assert top[0].data.dtype == np.float32
    np.testing.assert_array_equal(top[0].data, np.float32(0.1))


@pytest.mark.parametrize("n_top, text, pattern", [
    (3, 'shape { dim: 1 } data_filler { } data_filler { }', "data_filler"),
    (3, 'shape { dim: 1 } shape { dim: 2 }', "shape"),
    (1, '', "shape"),
    (1, 'shape { dim: 1 } num: 1 channels: 1 height: 1 width: 1', "shape.*legacy"),
    (1, 'num: 1 channels: 1 height: 1', "width"),
    (2, 'num: 1 num: 1 num: 1 channels: 1 height: 1 width: 1', "num"),
    (1, 'shape { dim: 2 } data_filler { type: "nonesuch" }', "data_filler.*nonesuch"),
    (1, 'shape { dim: -2 }', "negative"),
])
def test_bad_params(n_top, text, pattern):
    with pytest.raises(CaffeliteError, match=f"dd.*DummyData.*{pattern}"):
        build(n_top, text)


def test_takes_no_bottoms():
    from caffelite.testing.gradient_check import make_blobs
    lp = text_format.Parse('name: "dd" type: "DummyData" bottom: "x" top: "y" '
                           'dummy_data_param { shape { dim: 1 } }', caffe_pb2.LayerParameter())
    with pytest.raises(CaffeliteError, match="dd.*0 bottom"):
        build_layer(lp, make_blobs([np.zeros(1)]))


def test_in_a_net(tmp_path):
    (tmp_path / "net.prototxt").write_text("""
name: "dummy"
layer { name: "data" type: "DummyData" top: "data" top: "label"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 }
                           data_filler { type: "constant" value: 1 }
                           data_filler { type: "constant" value: 2 } } }
layer { name: "act" type: "TanH" bottom: "data" top: "out" }
layer { name: "quiet" type: "Silence" bottom: "label" }
""")
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    out = net.forward()
    np.testing.assert_allclose(out["out"], np.full((4, 3), np.tanh(1.0)), rtol=1e-6)
    assert (net.blobs["label"].data == 2).all()


def test_v1_name(tmp_path):
    (tmp_path / "net.prototxt").write_text("""
name: "v1"
layers { name: "data" type: DUMMY_DATA top: "data"
         dummy_data_param { num: 2 channels: 1 height: 1 width: 3 } }
""")
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST)
    assert net.layers[0].type == "DummyData"
    assert net.blobs["data"].data.shape == (2, 1, 1, 3)
