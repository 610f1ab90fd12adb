"""pycaffe's module-level surface (reference §6.1, §6.3) beyond Net and the solvers: log
set-up, the solver count and rank, the no-NCCL stub, Timer, and the Blob's GPU pointers."""
import logging
import re
import time

import numpy as np
import pytest

import caffelite as caffe
from caffelite.log import logger


@pytest.fixture
def restore_logging():
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_every_module_level_name_of_pycaffe_is_there():
    for name in ("set_mode_cpu", "set_mode_gpu", "set_device", "set_random_seed",
                 "layer_type_list", "get_solver", "init_log", "log", "solver_count",
                 "set_solver_count", "solver_rank", "set_solver_rank", "set_multiprocess",
                 "has_nccl", "NCCL", "Timer", "Net", "SGDSolver", "NesterovSolver",
                 "AdaGradSolver", "RMSPropSolver", "AdaDeltaSolver", "AdamSolver", "Layer",
                 "Classifier", "Detector", "io", "NetSpec", "layers", "params", "to_proto",
                 "proto", "TRAIN", "TEST"):
        assert hasattr(caffe, name), name
    assert caffe.__version__ == "1.0.0" and (caffe.TRAIN, caffe.TEST) == (0, 1)


def test_log_writes_a_glog_line_naming_the_caller(capsys, restore_logging):
    caffe.init_log()
    caffe.log("hello from a script")
    err = capsys.readouterr().err
    assert re.search(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ test_pycaffe_runtime\.py:\d+\] "
                     r"hello from a script$", err, re.M), err


def test_init_log_level_drops_lower_severities(capsys, restore_logging):
    caffe.init_log(1, True)
    caffe.log("not shown")
    logger.warning("shown")
    err = capsys.readouterr().err
    assert "not shown" not in err and "] shown" in err
    with pytest.raises(caffe.CaffeliteError, match="init_log: level"):
        caffe.init_log(7)


def test_log_before_init_log_still_reaches_stderr(capsys, restore_logging):
    logger.handlers[:] = []
    logger.setLevel(logging.NOTSET)
    caffe.log("early")
    assert "] early" in capsys.readouterr().err


def test_solver_count_and_rank_are_kept():
    try:
        assert (caffe.solver_count(), caffe.solver_rank()) == (1, 0)
        caffe.set_solver_count(4)
        caffe.set_solver_rank(3)
        caffe.set_multiprocess(True)
        assert (caffe.solver_count(), caffe.solver_rank()) == (4, 3)
        with pytest.raises(caffe.CaffeliteError, match="solver count"):
            caffe.set_solver_count(0)
        with pytest.raises(caffe.CaffeliteError, match="solver rank"):
            caffe.set_solver_rank(-1)
    finally:
        caffe.set_solver_count(1)
        caffe.set_solver_rank(0)
        caffe.set_multiprocess(False)


def test_nccl_is_the_stub_of_a_caffe_built_without_it():
    assert caffe.has_nccl() is False
    stub = caffe.NCCL(None, "")
    assert not hasattr(stub, "bcast") and not hasattr(caffe.NCCL, "new_uid")


def test_timer_follows_caffes_rules(capsys, restore_logging):
    caffe.init_log()
    t = caffe.Timer()
    assert t.ms == 0.0
    assert re.search(r"^W\d{4} .*\] Timer has never been run", capsys.readouterr().err, re.M)
    t.start()
    time.sleep(0.02)
    t.start()                      # no restart while running
    first = t.ms                   # reading stops the timer
    assert 15 <= first < 1000
    time.sleep(0.01)
    assert t.ms == first
    t.stop()
    assert t.ms == first


def test_gpu_pointers_of_a_host_blob_say_why_there_are_none():
    blob = caffe.Blob((2, 3))
    for attr in ("_gpu_data_ptr", "_gpu_diff_ptr"):
        with pytest.raises(caffe.CaffeliteError, match="host memory.*set_mode_gpu"):
            getattr(blob, attr)
    assert isinstance(blob.data, np.ndarray)


def test_net_constructor_forms(tmp_path, capsys, restore_logging):
    deploy = "models/lenet/deploy.prototxt"
    weights = str(tmp_path / "w.caffemodel")
    base = caffe.Net(deploy, caffe.TEST)
    base.params["conv1"][0].data[...] = 0.5
    base.save(weights)
    caffe.init_log()
    forms = [
        caffe.Net(deploy, caffe.TEST, 0, None, weights),             # all positional
        caffe.Net(network_file=deploy, phase=caffe.TEST, weights=weights),
        caffe.Net(deploy, weights, caffe.TEST),                      # deprecated form
    ]
    for net in forms:
        assert (net.params["conv1"][0].data == 0.5).all()
    err = capsys.readouterr().err
    assert err.count("DEPRECATION WARNING - deprecated use of Python interface") == 1
    assert f"Net('{deploy}', 1, weights='{weights}')" in err
    stage_net = caffe.Net(deploy, caffe.TEST, 0, ["deploy"])
    assert list(stage_net.param.state.stage) == ["deploy"]
    with pytest.raises(TypeError, match="unexpected argument 'foo'"):
        caffe.Net(deploy, caffe.TEST, foo=1)
    with pytest.raises(TypeError, match="'phase' twice"):
        caffe.Net(deploy, caffe.TEST, phase=caffe.TEST)


def test_an_unknown_layer_name_is_a_value_error_as_in_pycaffe():
    net = caffe.Net("models/lenet/deploy.prototxt", caffe.TEST)
    for call in (lambda: net.forward(start="nope"), lambda: net.forward(end="nope"),
                 lambda: net.backward(start="nope")):
        with pytest.raises(ValueError, match="no layer named 'nope'"):
            call()
