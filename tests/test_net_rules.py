"""Caffe's net rules (reference §3): state filtering, phases, wiring, splits, loss weights,
parameter sharing, backward-need inference, outputs and legacy inputs."""
import numpy as np
import pytest

import caffelite as caffe
from caffelite.errors import CaffeliteError, LayerError, NetError, PrototxtError
from caffelite.proto import caffe_pb2
from google.protobuf import text_format


def net_from_text(text, phase=caffe.TEST, tmp_path=None, **kw):
    if tmp_path is not None:
        path = tmp_path / "net.prototxt"
        path.write_text(text)
        return caffe.Net(str(path), phase, **kw)
    param = text_format.Parse(text, caffe_pb2.NetParameter())
    param.state.phase = phase
    return caffe.Net(param)


IP = """
layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{top}"
  {extra}
  inner_product_param {{ num_output: {n} weight_filler {{ type: "gaussian" std: 0.5 }}
                         bias_filler {{ type: "gaussian" std: 0.5 }} }} }}
"""


def ip(name, bottom, top, n=3, extra=""):
    return IP.format(name=name, bottom=bottom, top=top, n=n, extra=extra)


INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 } } }\n'


# -- state filtering ------------------------------------------------------------------------

STATE_NET = INPUT + """
layer { name: "train_only" type: "ReLU" bottom: "data" top: "a" include { phase: TRAIN } }
layer { name: "test_only" type: "ReLU" bottom: "data" top: "b" include { phase: TEST } }
layer { name: "not_test" type: "ReLU" bottom: "data" top: "c" exclude { phase: TEST } }
layer { name: "level2" type: "ReLU" bottom: "data" top: "d" include { min_level: 2 } }
layer { name: "upto1" type: "ReLU" bottom: "data" top: "e" include { max_level: 1 } }
layer { name: "stage_ab" type: "ReLU" bottom: "data" top: "f" include { stage: "a" stage: "b" } }
layer { name: "not_b" type: "ReLU" bottom: "data" top: "g" include { not_stage: "b" } }
layer { name: "either" type: "ReLU" bottom: "data" top: "h"
        include { phase: TRAIN } include { stage: "a" } }
"""


def kept(net):
    return [l.name for l in net.layers if l.type not in ("Input", "Split")]


def test_include_exclude_by_phase(tmp_path):
    assert kept(net_from_text(STATE_NET, caffe.TRAIN, tmp_path)) == \
        ["train_only", "not_test", "upto1", "not_b", "either"]
    assert kept(net_from_text(STATE_NET, caffe.TEST, tmp_path)) == ["test_only", "upto1", "not_b"]


def test_include_by_level_and_stage(tmp_path):
    net = net_from_text(STATE_NET, caffe.TEST, tmp_path, level=2, stages=["a", "b"])
    assert kept(net) == ["test_only", "level2", "stage_ab", "either"]
    net = net_from_text(STATE_NET, caffe.TEST, tmp_path, level=1, stages=["a"])
    assert kept(net) == ["test_only", "upto1", "not_b", "either"]


def test_include_and_exclude_together_is_an_error(tmp_path):
    text = INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" top: "r" ' \
                   'include { phase: TRAIN } exclude { phase: TEST } }'
    with pytest.raises(NetError, match="'r'.*include and exclude"):
        net_from_text(text, caffe.TRAIN, tmp_path)


def test_layer_phase_defaults_to_net_phase_unless_set():
    text = INPUT + 'layer { name: "r1" type: "ReLU" bottom: "data" top: "a" }\n' \
                   'layer { name: "r2" type: "ReLU" bottom: "data" top: "b" phase: TRAIN }'
    net = net_from_text(text, caffe.TEST)
    assert net.layer_dict["r1"].phase == caffe.TEST
    assert net.layer_dict["r2"].phase == caffe.TRAIN


# -- wiring ---------------------------------------------------------------------------------

def test_in_place_reuses_the_blob_and_outputs_are_sorted_by_name():
    text = INPUT + ip("zeta", "data", "z") + \
        'layer { name: "relu" type: "ReLU" bottom: "z" top: "z" }\n' + ip("alpha", "data", "a")
    net = net_from_text(text)
    assert list(net.blobs) == ["data", "data_data_0_split_0", "data_data_0_split_1", "z", "a"]
    assert net.outputs == ["a", "z"]
    assert net.top_names["relu"] == ["z"] and net.bottom_names["relu"] == ["z"]
    assert net.inputs == ["data"]


def test_unknown_bottom_names_the_layer(tmp_path):
    text = INPUT + ip("fc", "nothere", "out")
    with pytest.raises(NetError, match="'fc'.*Unknown bottom blob 'nothere' "
                                       "\\(layer 'fc', bottom index 0\\)"):
        net_from_text(text, tmp_path=tmp_path)


def test_top_produced_twice_is_an_error():
    text = INPUT + ip("fc1", "data", "out") + ip("fc2", "data", "out")
    with pytest.raises(LayerError, match="'fc2'.*'out'.*multiple sources"):
        net_from_text(text)


def test_unknown_type_lists_known_types():
    text = INPUT + 'layer { name: "odd" type: "NoSuchLayer" bottom: "data" top: "x" }'
    with pytest.raises(LayerError, match="'odd'.*unknown layer type 'NoSuchLayer'.*InnerProduct"):
        net_from_text(text)


def test_wrong_number_of_bottoms_names_the_layer():
    text = INPUT + 'layer { name: "r" type: "ReLU" bottom: "data" bottom: "data" top: "x" }'
    with pytest.raises(LayerError, match="'r' \\(type ReLU\\).*1 bottom"):
        net_from_text(text)


def test_malformed_prototxt_names_file_line_column(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  typo_field: 3\n}\n')
    with pytest.raises(PrototxtError) as err:
        caffe.Net(str(path), caffe.TEST)
    assert f"{path}:4:" in str(err.value) and "typo_field" in str(err.value)
    assert isinstance(err.value, CaffeliteError)


@pytest.mark.parametrize("body, where", [
    ('inner_product_param { num_output: 3 num_output: 5 }', "num_output"),
    ('inner_product_param { num_output: 3 } inner_product_param { num_output: 5 }',
     "inner_product_param"),
])
def test_a_field_given_twice_is_refused_as_caffe_does(tmp_path, body, where):
    # Caffe reads prototxts with TextFormat::Parse: no "last value wins"
    path = tmp_path / "twice.prototxt"
    path.write_text(INPUT + f'layer {{ name: "fc" type: "InnerProduct" bottom: "data" '
                            f'top: "y"\n  {body} }}\n')
    with pytest.raises(PrototxtError, match=f"{path}:3:.*multiple \"{where}\""):
        caffe.Net(str(path), caffe.TEST)


def test_comments_in_other_encodings_are_skipped_as_caffe_does(tmp_path):
    # GBK and Latin-1 notes in comments are common in shared prototxts
    path = tmp_path / "gbk.prototxt"
    path.write_bytes('name: "n"  # 卷积网络 café\n'.encode("gbk", errors="replace")
                     + INPUT.encode())
    assert caffe.Net(str(path), caffe.TEST).name == "n"
    path.write_bytes(b'name: "caf\xe9"\n' + INPUT.encode())    # not in a comment: refused
    with pytest.raises(PrototxtError, match=f"{path}:1:"):
        caffe.Net(str(path), caffe.TEST)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(PrototxtError, match="no such file"):
        caffe.Net(str(tmp_path / "missing.prototxt"), caffe.TEST)


# -- splits and loss weights ----------------------------------------------------------------

def test_split_insertion_names_and_gradient_sum():
    text = INPUT + ip("fc", "data", "h") + ip("a", "h", "ya") + ip("b", "h", "yb") + \
        "force_backward: true\n"
    net = net_from_text(text)
    assert net._layer_names == ["data", "fc", "h_fc_0_split", "a", "b"]
    assert net.bottom_names["a"] == ["h_fc_0_split_0"]
    assert net.bottom_names["b"] == ["h_fc_0_split_1"]
    rng = np.random.default_rng(0)
    net.blobs["data"].data[...] = rng.standard_normal((2, 4))
    net.forward()
    ga, gb = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    net.blobs["ya"].diff[...] = ga
    net.blobs["yb"].diff[...] = gb
    net.backward()
    wa, wb = net.params["a"][0].data, net.params["b"][0].data
    np.testing.assert_allclose(net.blobs["h"].diff, ga @ wa + gb @ wb, rtol=1e-5)


def test_explicit_loss_weight_counts_as_a_use_and_moves_to_the_split():
    text = INPUT + ip("fc", "data", "h", extra="loss_weight: 2") + ip("a", "h", "ya")
    net = net_from_text(text)
    split = net.layer_dict["h_fc_0_split"]
    assert split.loss_weights == [2.0, 0.0]
    assert net.bottom_names["a"] == ["h_fc_0_split_1"]
    assert net.layer_dict["fc"].loss_weights == [0.0]
    net.blobs["data"].data[...] = 1.0
    out = net.forward()
    loss = net._forward(0, len(net.layers) - 1)
    assert loss == pytest.approx(2.0 * float(net.blobs["h"].data.sum()), rel=1e-5)
    assert net.blob_loss_weights["h_fc_0_split_0"] == 2.0
    assert set(out) == {"h_fc_0_split_0", "ya"}


def test_loss_weight_count_must_match_tops():
    text = INPUT + ip("fc", "data", "h", extra="loss_weight: 1 loss_weight: 2")
    with pytest.raises(LayerError, match="'fc'.*loss_weight"):
        net_from_text(text)


# -- parameters -----------------------------------------------------------------------------

SHARED = INPUT + """
layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "y1"
  param { name: "w" } param { name: "b" }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "fc2" type: "InnerProduct" bottom: "data" top: "y2"
  param { name: "w" %s } param { name: "b" }
  inner_product_param { num_output: 3 %s weight_filler { type: "gaussian" std: 1 } } }
force_backward: true
"""


def test_shared_params_share_memory_and_accumulate_gradients():
    net = net_from_text(SHARED % ("", ""))
    w1, w2 = net.params["fc1"][0], net.params["fc2"][0]
    np.testing.assert_array_equal(w1.data, w2.data)
    w1.data[0, 0] = 42.0
    assert w2.data[0, 0] == 42.0
    assert len(net.learnable_params) == 2
    x = np.random.default_rng(1).standard_normal((2, 4))
    net.blobs["data"].data[...] = x
    net.forward()
    g1, g2 = np.ones((2, 3)), 2 * np.ones((2, 3))
    net.blobs["y1"].diff[...] = g1
    net.blobs["y2"].diff[...] = g2
    net.clear_param_diffs()
    net.backward()
    np.testing.assert_allclose(w1.diff, (g1 + g2).T @ x, rtol=1e-5)


def test_strict_sharing_needs_equal_shapes_permissive_equal_counts():
    text = INPUT.replace("dim: 4", "dim: 4") + """
layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "y1" param { name: "w" }
  inner_product_param { num_output: 6 bias_term: false } }
layer { name: "r" type: "Reshape" bottom: "data" top: "d2" reshape_param { shape { dim: 0 dim: 2 dim: 2 } } }
layer { name: "fc2" type: "InnerProduct" bottom: "data" top: "y2" param { name: "w" %s }
  inner_product_param { num_output: 6 bias_term: false transpose: true } }
"""
    if "Reshape" not in caffe.layer_type_list():
        text = text.replace('layer { name: "r" type: "Reshape" bottom: "data" top: "d2" '
                            'reshape_param { shape { dim: 0 dim: 2 dim: 2 } } }\n', "")
    with pytest.raises(LayerError, match="'fc2'.*share param 'w'.*shape"):
        net_from_text(text % "")
    net = net_from_text(text % "share_mode: PERMISSIVE")
    assert net.params["fc2"][0].shape == (4, 6)
    assert net.params["fc2"][0].shares_memory_with(net.params["fc1"][0])


def test_shared_param_lr_mult_mismatch_is_an_error():
    with pytest.raises(LayerError, match="mismatched lr_mult"):
        net_from_text(SHARED.replace('param { name: "w" }', 'param { name: "w" lr_mult: 1 }', 1)
                      % ("lr_mult: 2", ""))


def test_lr_and_decay_mults_and_too_many_specs():
    text = INPUT + ip("fc", "data", "y", extra="param { lr_mult: 0.5 decay_mult: 0 } "
                                               "param { lr_mult: 2 }")
    net = net_from_text(text)
    assert net.params_lr == [0.5, 2.0] and net.params_weight_decay == [0.0, 1.0]
    text = INPUT + ip("fc", "data", "y", extra="param {} param {} param {}")
    with pytest.raises(LayerError, match="'fc'.*too many param specs"):
        net_from_text(text)


# -- backward-need inference ----------------------------------------------------------------

def test_frozen_layers_get_no_backward_and_propagate_down_false_is_respected():
    text = INPUT + ip("fc1", "data", "h1", extra="param { lr_mult: 0 } param { lr_mult: 0 }") + \
        ip("fc2", "h1", "h2") + ip("fc3", "h2", "y", extra="propagate_down: false")
    net = net_from_text(text)
    need = dict(zip(net._layer_names, net._layer_need_backward))
    # nothing feeds a loss, so nothing runs backward
    assert need == {"data": False, "fc1": False, "fc2": False, "fc3": False}
    # with a loss weight fc3 learns, but propagate_down: false stops the gradient at h2, so
    # fc2 (whose only top is skipped) and the frozen fc1 get no backward
    text2 = text.replace('top: "y"', 'top: "y" loss_weight: 1')
    net = net_from_text(text2)
    need = dict(zip(net._layer_names, net._layer_need_backward))
    assert need["fc3"] and not need["fc2"] and not need["fc1"]
    assert net._bottom_need_backward[net._layer_names.index("fc3")] == [False]


def test_force_backward_sends_gradients_everywhere():
    text = INPUT + ip("fc1", "data", "h1", extra="param { lr_mult: 0 } param { lr_mult: 0 }")
    net = net_from_text(text)
    assert net._layer_need_backward == [False, False]
    net = net_from_text(text + "force_backward: true")
    assert net._layer_need_backward == [True, True]
    net.blobs["data"].data[...] = 1
    net.forward()
    net.blobs["h1"].diff[...] = 1
    net.backward()
    assert np.abs(net.params["fc1"][0].diff).sum() > 0  # all params computed under force
    np.testing.assert_allclose(net.blobs["data"].diff,
                               np.ones((2, 3)) @ net.params["fc1"][0].data, rtol=1e-6)


def test_propagate_down_count_must_match_bottoms():
    text = INPUT + ip("fc", "data", "y", extra="propagate_down: true propagate_down: false")
    with pytest.raises(LayerError, match="'fc'.*propagate_down"):
        net_from_text(text)


# -- legacy inputs ---------------------------------------------------------------------------

@pytest.mark.parametrize("decl", [
    'input: "data" input_dim: 2 input_dim: 4 input_dim: 1 input_dim: 1',
    'input: "data" input_shape { dim: 2 dim: 4 dim: 1 dim: 1 }',
    # both given: Caffe's UpgradeNetInput takes input_shape and ignores input_dim
    'input: "data" input_shape { dim: 2 dim: 4 dim: 1 dim: 1 } input_dim: 7 input_dim: 7',
])
def test_legacy_net_inputs_become_an_input_layer(tmp_path, decl):
    text = decl + "\n" + ip("fc", "data", "y")
    net = net_from_text(text, tmp_path=tmp_path)
    assert net._layer_names[0] == "input" and net.layers[0].type == "Input"
    assert net.inputs == ["data"] and net.blobs["data"].shape == (2, 4, 1, 1)
    assert net.blobs["y"].shape == (2, 3)


# -- pycaffe API ---------------------------------------------------------------------------

def test_pycaffe_forward_backward_and_forward_all():
    text = INPUT + ip("fc1", "data", "h") + 'layer { name: "relu" type: "ReLU" bottom: "h" top: "h" }' \
        + ip("fc2", "h", "y") + "force_backward: true\n"
    caffe.set_random_seed(3)
    net = net_from_text(text)
    x = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)
    out = net.forward(data=x)
    w1, b1 = net.params["fc1"][0].data, net.params["fc1"][1].data
    w2, b2 = net.params["fc2"][0].data, net.params["fc2"][1].data
    expected = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(out["y"], expected, rtol=1e-5, atol=1e-6)
    assert out["y"] is not None and np.shares_memory(out["y"], net.blobs["y"].data)
    partial = net.forward(end="fc1", blobs=["data"])
    assert set(partial) == {"h", "data"}
    diffs = net.backward(y=np.ones((2, 3), np.float32))
    assert set(diffs) == {"data"}
    with pytest.raises(CaffeliteError, match="do not match"):
        net.forward(wrong=x)
    xs = np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32)
    all_out = net.forward_all(data=xs)
    assert all_out["y"].shape == (5, 3)
    np.testing.assert_allclose(all_out["y"],
                               np.maximum(xs @ w1.T + b1, 0) @ w2.T + b2, rtol=1e-5, atol=1e-5)
    outs, grads = net.forward_backward_all(data=xs, y=np.ones((5, 3), np.float32))
    assert outs["y"].shape == (5, 3) and grads["data"].shape == (5, 4)


def test_random_seed_makes_fillers_reproducible():
    text = INPUT + ip("fc", "data", "y")
    caffe.set_random_seed(7)
    a = net_from_text(text).params["fc"][0].data.copy()
    caffe.set_random_seed(7)
    b = net_from_text(text).params["fc"][0].data.copy()
    np.testing.assert_array_equal(a, b)


def test_three_argument_constructor_and_weights_keyword(tmp_path):
    text = INPUT + ip("fc", "data", "y")
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    caffe.set_random_seed(1)
    net = caffe.Net(str(path), caffe.TEST)
    net.params["fc"][0].data[...] = 3.0
    net.save(str(tmp_path / "w.caffemodel"))
    for other in (caffe.Net(str(path), str(tmp_path / "w.caffemodel"), caffe.TEST),
                  caffe.Net(str(path), caffe.TEST, weights=str(tmp_path / "w.caffemodel"))):
        np.testing.assert_array_equal(other.params["fc"][0].data, 3.0)
        np.testing.assert_array_equal(other.params["fc"][1].data, net.params["fc"][1].data)


def test_debug_info_logs_mean_absolute_values(caplog):
    import logging
    text = INPUT + ip("fc", "data", "y", extra='param { name: "w" }') + \
        "force_backward: true\ndebug_info: true\n"
    net = net_from_text(text)
    net.blobs["data"].data[...] = -2.0
    log = logging.getLogger("caffelite")
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="caffelite"):
            net.forward_backward()
            net.update()
    finally:
        log.removeHandler(caplog.handler)
    text = caplog.text
    assert "    [Forward] Layer data, top blob data data: 2" in text
    assert "    [Forward] Layer fc, param blob w data: " in text
    assert "    [Forward] Layer fc, param blob 1 data: " in text
    assert "    [Backward] Layer fc, bottom blob data diff: " in text
    assert "    [Backward] Layer fc, param blob 0 diff: " in text
    assert "    [Backward] All net params (data, diff): L1 norm = (" in text
    assert {r.levelname for r in caplog.records if "All net params" in r.getMessage()} == \
        {"ERROR"}                                   # an E line in Caffe's log
    assert "[Update]" not in text                   # Caffe 1.0's Net::Update logs nothing


def test_share_with_takes_the_first_layer_of_a_name():
    # layer names need not be unique; Caffe's ShareTrainedLayersWith shares into the first
    source = net_from_text(INPUT + ip("fc", "data", "a"))
    target = net_from_text(INPUT + ip("fc", "data", "a") + ip("fc", "data", "b"))
    target.share_with(source)
    first, second = [layer for layer in target.layers if layer.type == "InnerProduct"]
    assert first.blobs[0].shares_memory_with(source.layers[1].blobs[0])
    assert not second.blobs[0].shares_memory_with(source.layers[1].blobs[0])


@pytest.mark.parametrize("vintage, lines", [
    ("v0", ["Attempting to upgrade input file specified using deprecated V0LayerParameter: ",
            "Successfully upgraded file specified using deprecated V0LayerParameter",
            "Note that future Caffe releases will not support V0NetParameter",
            "Attempting to upgrade input file specified using deprecated V1LayerParameter: "]),
    ("v1", ["Attempting to upgrade input file specified using deprecated V1LayerParameter: ",
            "Successfully upgraded file specified using deprecated V1LayerParameter"]),
])
def test_upgrades_are_logged_as_caffe_logs_them(fixtures_dir, vintage, lines):
    import logging
    path = fixtures_dir / "legacy" / f"lenet_{vintage}" / f"net_{vintage}.prototxt"
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logging.getLogger("caffelite").addHandler(handler)
    old = logging.getLogger("caffelite").level
    logging.getLogger("caffelite").setLevel(logging.INFO)
    try:
        caffe.Net(str(path), caffe.TEST)
    finally:
        logging.getLogger("caffelite").removeHandler(handler)
        logging.getLogger("caffelite").setLevel(old)
    text = "\n".join(seen)
    for line in lines:
        assert line in text, line
    assert str(path) in text


def test_a_loss_layer_without_a_top_gets_caffes_automatic_one():
    # LossLayer::AutoTopBlobs: an "(automatic)" top with loss weight 1, a net output in
    # net.blobs like any other blob (SoftmaxWithLoss included)
    text = ('layer { name: "x" type: "Input" top: "x" top: "y" input_param { '
            'shape { dim: 2 dim: 3 } shape { dim: 2 } } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" }\n')
    net = net_from_text(text, phase=caffe.TRAIN)
    assert net.top_names["loss"] == ["(automatic)"] and net.outputs == ["(automatic)"]
    assert net.blob_loss_weights["(automatic)"] == 1.0
    out = net.forward()
    assert out["(automatic)"] == pytest.approx(np.log(3)) and "(automatic)" in net.blobs
