"""Python layer: user classes imported by module name, in a layer and inside a Net."""
import itertools
import textwrap

import numpy as np
import pytest
from google.protobuf import text_format

import caffelite
from caffelite.errors import CaffeliteError, LayerError
from caffelite.layer_types import python_layer
from caffelite.proto import caffe_pb2
from caffelite.testing.gradient_check import build_layer, check_gradients, make_blobs

SOURCE = '''
import numpy as np
import caffelite as caffe


class Scale(caffe.Layer):
    """top = k * bottom, with k from param_str."""

    def setup(self, bottom, top):
        self.k = float(self.param_str)
        self.phase_at_setup = self.phase

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.k * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = self.k * top[0].diff


class EuclideanLoss(caffe.Layer):
    """pycaffe's example loss: sum((a - b)^2) / (2 num)."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        self.diff = np.zeros_like(bottom[0].data)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if propagate_down[i]:
                sign = 1 if i == 0 else -1
                bottom[i].diff[...] = sign * top[0].diff * self.diff / bottom[i].num


class Weighted(caffe.Layer):
    """top = bottom * w, one learnable w per feature (blob made with add_blob)."""

    def setup(self, bottom, top):
        self.blobs.add_blob(*bottom[0].shape[1:])
        self.blobs[0].data[...] = 2.0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[...] += (top[0].diff * bottom[0].data).sum(axis=0)
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * self.blobs[0].data


class NotALayer:
    pass
'''

_counter = itertools.count()


@pytest.fixture
def module(tmp_path, monkeypatch):
    """A freshly named module holding SOURCE, importable from tmp_path."""
    name = f"caffelite_test_pylayers_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(python_layer.ENV_VAR, raising=False)
    return name


def py_param(module, cls, param_str="", name="py", extra=""):
    return text_format.Parse(
        f'name: "{name}" type: "Python" bottom: "x" top: "y" python_param {{ '
        f'module: "{module}" layer: "{cls}" param_str: "{param_str}" }} {extra}',
        caffe_pb2.LayerParameter())


def test_elementwise_layer_with_param_str(module):
    x = np.random.default_rng(0).standard_normal((2, 3))
    bottom = make_blobs([x])
    lp = py_param(module, "Scale", "2.5", extra="phase: TEST")
    layer, top = build_layer(lp, bottom)
    assert isinstance(layer, caffelite.Layer)
    assert layer.type == "Python"
    assert layer.param_str == "2.5"
    assert layer.phase_at_setup == 1 and isinstance(layer.phase_at_setup, int)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, 2.5 * x)
    check_gradients(layer, bottom, top)


def test_default_loss_weight_is_zero(module):
    bottom = make_blobs([np.ones((2, 2)), np.zeros((2, 2))])
    lp = py_param(module, "EuclideanLoss")
    lp.bottom.append("t")
    layer, top = build_layer(lp, bottom)
    assert layer.loss_weights == [0.0]
    assert layer.Forward(bottom, top) == 0.0


NET = """
name: "pynet"
force_backward: true
layer { name: "data" type: "Input" top: "a" top: "b"
        input_param { shape { dim: 4 dim: 3 } } }
layer { name: "scale" type: "Python" bottom: "a" top: "sa"
        python_param { module: "MODULE" layer: "Scale" param_str: "3" } }
layer { name: "weighted" type: "Python" bottom: "sa" top: "wa"
        python_param { module: "MODULE" layer: "Weighted" } }
layer { name: "loss" type: "Python" bottom: "wa" bottom: "b" top: "loss"
        python_param { module: "MODULE" layer: "EuclideanLoss" } loss_weight: 1 }
"""


def make_net(module, phase=caffelite.TRAIN):
    param = text_format.Parse(NET.replace("MODULE", module), caffe_pb2.NetParameter())
    return caffelite.Net(param, phase)


def test_loss_layer_in_a_net(module):
    net = make_net(module)
    assert [l.type for l in net.layers] == ["Input", "Python", "Python", "Python"]
    assert net.blob_loss_weights["loss"] == 1.0
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 4, 3))
    net.blobs["a"].data[...] = a
    net.blobs["b"].data[...] = b
    out = net.forward()
    wa = 3 * a * 2.0
    expected = np.sum((wa - b) ** 2) / 4 / 2
    np.testing.assert_allclose(out["loss"], [expected], rtol=1e-5)
    net.clear_param_diffs()
    net.backward()
    d_wa = (wa - b) / 4
    np.testing.assert_allclose(net.blobs["wa"].diff, d_wa, rtol=1e-5)
    np.testing.assert_allclose(net.blobs["sa"].diff, 2.0 * d_wa, rtol=1e-5)
    np.testing.assert_allclose(net.blobs["a"].diff, 6.0 * d_wa, rtol=1e-5)
    np.testing.assert_allclose(net.blobs["b"].diff, -d_wa, rtol=1e-5)
    np.testing.assert_allclose(net.params["weighted"][0].diff, (d_wa * 3 * a).sum(axis=0),
                               rtol=1e-5)
    # Learnable blobs made with add_blob are the net's params, and their diffs accumulate.
    assert net.params["weighted"][0].shape == (3,)
    assert len(net.learnable_params) == 1
    once = net.params["weighted"][0].diff.copy()
    net.backward()
    np.testing.assert_allclose(net.params["weighted"][0].diff, 2 * once, rtol=1e-6)


def test_phase_reaches_the_layer(module):
    net = make_net(module, caffelite.TEST)
    assert net.layer_dict["scale"].phase == caffelite.TEST
    assert net.layer_dict["scale"].phase_at_setup == 1


def test_layer_with_learnable_blob_gradient(module):
    x = np.random.default_rng(2).standard_normal((3, 4))
    bottom = make_blobs([x])
    layer, top = build_layer(py_param(module, "Weighted"), bottom)
    assert [b.shape for b in layer.blobs] == [(4,)]
    assert layer.param_propagate_down == [True]
    check_gradients(layer, bottom, top)


def test_refusal_switch(module):
    lp = py_param(module, "Scale", "1")
    previous = python_layer.allow_python_layers(False)
    try:
        assert previous is True
        with pytest.raises(LayerError, match=f"py.*Python.*disabled.*{module}.*"
                                             f"allow_python_layers\\(True\\)"):
            build_layer(lp, make_blobs([np.zeros(2)]))
    finally:
        python_layer.allow_python_layers(previous)
    build_layer(lp, make_blobs([np.zeros(2)]))


def test_refusal_environment_variable(module, monkeypatch):
    lp = py_param(module, "Scale", "1")
    monkeypatch.setenv(python_layer.ENV_VAR, "1")
    with pytest.raises(LayerError, match=f"py.*Python.*disabled.*{module}.*"
                                         f"CAFFELITE_NO_PYTHON_LAYERS"):
        build_layer(lp, make_blobs([np.zeros(2)]))
    monkeypatch.setenv(python_layer.ENV_VAR, "0")
    build_layer(lp, make_blobs([np.zeros(2)]))


def test_refusal_inside_a_net(module, monkeypatch):
    monkeypatch.setenv(python_layer.ENV_VAR, "1")
    with pytest.raises(CaffeliteError, match="scale.*Python.*disabled"):
        make_net(module)


def test_missing_module(module):
    lp = py_param("caffelite_no_such_module_xyz", "Scale")
    with pytest.raises(LayerError, match="py.*Python.*caffelite_no_such_module_xyz.*Scale"):
        build_layer(lp, make_blobs([np.zeros(2)]))


def test_missing_class(module):
    with pytest.raises(LayerError, match=f"py.*Python.*{module}.*no class 'Nope'"):
        build_layer(py_param(module, "Nope"), make_blobs([np.zeros(2)]))


def test_class_must_derive_from_layer(module):
    with pytest.raises(LayerError, match=f"py.*NotALayer.*{module}.*caffe.Layer"):
        build_layer(py_param(module, "NotALayer"), make_blobs([np.zeros(2)]))


def test_module_with_a_broken_import(tmp_path, monkeypatch):
    name = f"caffelite_test_broken_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text("import caffelite_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(LayerError, match=f"py.*importing.*{name}.*Layer1.*"
                                         f"caffelite_missing_dependency_xyz"):
        build_layer(py_param(name, "Layer1"), make_blobs([np.zeros(2)]))
    bad = f"caffelite_test_syntax_{next(_counter)}"
    (tmp_path / f"{bad}.py").write_text("def broken(:\n")
    with pytest.raises(LayerError, match=f"py.*importing.*{bad}.*SyntaxError"):
        build_layer(py_param(bad, "Layer1"), make_blobs([np.zeros(2)]))


def test_python_param_required():
    lp = text_format.Parse('name: "py" type: "Python" bottom: "x" top: "y"',
                           caffe_pb2.LayerParameter())
    with pytest.raises(LayerError, match="py.*Python.*python_param.module"):
        build_layer(lp, make_blobs([np.zeros(2)]))


def test_module_written_after_start_is_found(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"caffelite_test_late_{next(_counter)}"
    lp = py_param(name, "Scale", "2")
    with pytest.raises(LayerError):
        build_layer(lp, make_blobs([np.zeros(2)]))
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(SOURCE))
    layer, top = build_layer(lp, make_blobs([np.ones(2)]))
    assert layer.k == 2.0
