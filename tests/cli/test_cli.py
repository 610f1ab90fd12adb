"""The caffelite command line: Caffe's commands, flags (single- and double-dash) and logs."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from caffelite.cli.main import main
from caffelite.proto import caffe_pb2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NET = """name: "clinet"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 8 dim: 4 } shape { dim: 8 }
                     data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "score"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc" include { phase: TEST } }
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.1\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 2\n'
        'max_iter: 6\nsnapshot: 3\nsnapshot_prefix: "snap"\ntest_iter: 2\ntest_interval: 3\n'
        'random_seed: 3\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capfd, *argv):
    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out + err


def test_train_logs_like_caffe_and_snapshots(workdir, capfd):
    code, log = run(capfd, "train", "-solver", "solver.prototxt")
    assert code == 0
    for line in ("Use CPU.", "Starting Optimization", "Solving clinet",
                 "Learning Rate Policy: fixed", "Iteration 0, Testing net (#0)",
                 "Iteration 0, lr = 0.1", "Snapshotting to binary proto file snap_iter_3.caffemodel",
                 "Snapshotting solver state to binary proto file snap_iter_3.solverstate",
                 "Iteration 6, loss = ", "Optimization Done."):
        assert line in log, line
    assert re.search(r"Iteration 2 \([0-9.e+-]+ iter/s, [0-9.e+-]+s/2 iters\), loss = [0-9.]+", log)
    assert re.search(r"    Train net output #0: loss = [0-9.e-]+ \(\* 1 = [0-9.e-]+ loss\)", log)
    assert re.search(r"    Test net output #0: acc = [0-9.]+", log)
    assert re.search(r"    Test net output #1: loss = [0-9.e-]+ \(\* 1 = ", log)
    assert log.count("Optimization Done.") == 2
    assert re.match(r"I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.]+:\d+\] ", log.splitlines()[0])
    assert (workdir / "snap_iter_6.caffemodel").exists()


def test_resume_and_finetune_flags(workdir, capfd):
    assert run(capfd, "train", "--solver=solver.prototxt")[0] == 0
    code, log = run(capfd, "train", "-solver", "solver.prototxt", "-snapshot",
                    "snap_iter_3.solverstate")
    assert code == 0 and "Resuming from snap_iter_3.solverstate" in log
    assert "Iteration 3, Testing net (#0)" in log and "Iteration 0, lr" not in log
    code, log = run(capfd, "train", "-solver", "solver.prototxt", "-weights",
                    "snap_iter_6.caffemodel")
    assert code == 0 and "Finetuning from snap_iter_6.caffemodel" in log
    code, log = run(capfd, "train", "-solver", "solver.prototxt", "-weights", "a", "-snapshot", "b")
    assert code == 1 and "not both" in log


def test_test_and_time_commands(workdir, capfd):
    assert run(capfd, "train", "-solver", "solver.prototxt")[0] == 0
    code, log = run(capfd, "test", "-model", "net.prototxt", "-weights", "snap_iter_6.caffemodel",
                    "-iterations", "3")
    assert code == 0
    assert "Running for 3 iterations." in log and "Batch 2, acc = " in log and "Loss: " in log
    assert re.search(r"\] loss = [0-9.e-]+ \(\* 1 = ", log)
    code, log = run(capfd, "time", "-model", "net.prototxt", "-iterations", "2")
    assert code == 0
    for line in ("Performing Forward", "Initial loss: ", "Performing Backward",
                 "*** Benchmark begins ***", "Testing for 2 iterations.",
                 "Iteration: 2 forward-backward time: ", "Average time per layer: ",
                 "        fc\tforward: ", "        fc\tbackward: ", "Average Forward pass: ",
                 "Average Backward pass: ", "Average Forward-Backward: ", "Total Time: ",
                 "*** Benchmark ends ***"):
        assert line in log, line


def test_errors_are_clear(workdir, capfd):
    code, log = run(capfd, "train")
    assert code == 1 and "Need a solver definition to train." in log
    code, log = run(capfd, "test", "-model", "net.prototxt")
    assert code == 1 and "Need model weights to score." in log
    code, log = run(capfd, "frobnicate")
    assert code == 1 and "unknown command 'frobnicate'" in log
    (workdir / "bad.prototxt").write_text('net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n'
                                          'type: "Magic"\n')
    code, log = run(capfd, "train", "-solver", "bad.prototxt")
    assert code == 1 and "bad.prototxt" in log and "unknown solver type 'Magic'" in log
    assert run(capfd, "--version")[1].strip() == "caffelite version 1.0.0"


def test_sigint_snapshots_and_stops_cleanly(workdir):
    (workdir / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 100000000\n'
        'snapshot_prefix: "sig"\nsnapshot_after_train: false\n')
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "caffelite", "train", "-solver",
                             "solver.prototxt", "-sigint_effect", "snapshot"],
                            cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and "Solving" not in (proc.stdout.readline() or ""):
        pass
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    proc.send_signal(signal.SIGHUP)  # default sighup_effect: snapshot
    time.sleep(1.0)
    proc.terminate()
    out = proc.communicate(timeout=60)[0]
    states = sorted(p.name for p in workdir.glob("sig_iter_*.solverstate"))
    assert len(states) >= 1, out
    assert not list(workdir.glob("*.tmp"))


def test_stop_effect_exits_after_the_iteration(workdir):
    (workdir / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 100000000\n'
        'snapshot_prefix: "stop"\n')
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "caffelite", "train", "-solver",
                             "solver.prototxt"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and "Solving" not in (proc.stdout.readline() or ""):
        pass
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "Optimization stopped early." in out
    assert list(workdir.glob("stop_iter_*.caffemodel"))  # snapshot_after_train still runs


def test_upgrade_commands(tmp_path, capfd, fixtures_dir):
    v1 = fixtures_dir / "legacy" / "lenet_v1" / "net_v1.prototxt"
    out = tmp_path / "up.prototxt"
    assert run(capfd, "upgrade_net_proto_text", str(v1), str(out))[0] == 0
    from google.protobuf import text_format
    param = text_format.Parse(out.read_text(), caffe_pb2.NetParameter())
    assert not param.layers and param.layer[0].type == "Input"
    v1w = fixtures_dir / "legacy" / "lenet_v1" / "weights_v1.caffemodel"
    outw = tmp_path / "up.caffemodel"
    assert run(capfd, "upgrade_net_proto_binary", str(v1w), str(outw))[0] == 0
    up = caffe_pb2.NetParameter()
    up.ParseFromString(outw.read_bytes())
    assert not up.layers and [l.type for l in up.layer][:2] == ["Input", "Convolution"] or \
        [l.type for l in up.layer][0] == "Convolution"
    solver = tmp_path / "s.prototxt"
    solver.write_text('net: "x"\nsolver_type: NESTEROV\n')
    assert run(capfd, "upgrade_solver_proto_text", str(solver), str(tmp_path / "s2.prototxt"))[0] == 0
    assert 'type: "Nesterov"' in (tmp_path / "s2.prototxt").read_text()


def test_convert_mnist_data(tmp_path, capfd):
    import gzip
    import struct
    import lmdb
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 3], dtype=np.uint8)
    with gzip.open(tmp_path / "img.gz", "wb") as f:
        f.write(struct.pack(">BBBB3I", 0, 0, 8, 3, 3, 4, 5) + images.tobytes())
    with open(tmp_path / "lab", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, 3) + labels.tobytes())
    code, log = run(capfd, "convert_mnist_data", str(tmp_path / "img.gz"), str(tmp_path / "lab"),
                    str(tmp_path / "db"))
    assert code == 0 and "A total of 3 items." in log
    env = lmdb.open(str(tmp_path / "db"), readonly=True)
    with env.begin() as txn:
        items = list(txn.cursor())
    assert [k for k, _ in items] == [b"00000000", b"00000001", b"00000002"]
    for i, (_, v) in enumerate(items):
        d = caffe_pb2.Datum()
        d.ParseFromString(v)
        assert (d.channels, d.height, d.width, d.label) == (1, 4, 5, labels[i])
        assert d.data == images[i].tobytes()
    code, log = run(capfd, "convert_mnist_data", str(tmp_path / "lab"), str(tmp_path / "lab"),
                    str(tmp_path / "db2"))
    assert code == 1


def test_glog_flags_are_taken_anywhere(workdir, capfd, monkeypatch):
    (workdir / "logs").mkdir()
    code, log = run(capfd, "time", "-log_dir", "logs", "-model", "net.prototxt",
                    "-iterations", "1", "-v", "2", "--logtostderr=false", "-alsologtostderr")
    assert code == 0 and "*** Benchmark ends ***" in log
    link = workdir / "logs" / "caffelite.INFO"
    text = link.read_text()
    assert link.is_symlink() and text.startswith("Log file created at: ")
    assert re.search(r"^I\d{4} .*time_cmd\.py:\d+\] \*\*\* Benchmark ends \*\*\*$", text, re.M)
    # -minloglevel 1 drops INFO; GLOG_minloglevel does the same from the environment
    code, log = run(capfd, "time", "-model", "net.prototxt", "-iterations", "1",
                    "-minloglevel=1")
    assert code == 0 and "Benchmark" not in log
    monkeypatch.setenv("GLOG_minloglevel", "2")
    code, log = run(capfd, "test", "-model", "net.prototxt", "-weights", "missing.caffemodel")
    assert code == 1 and "missing.caffemodel" in log and "Use CPU." not in log


def test_the_default_stage_is_one_empty_string(workdir, capfd):
    # Caffe splits an empty -stage into [""]: a layer excluded for stage "" is dropped
    (workdir / "net.prototxt").write_text(NET + 'layer { name: "extra" type: "Silence" '
                                          'bottom: "acc" exclude { stage: "" } }\n')
    code, log = run(capfd, "time", "-model", "net.prototxt", "-iterations", "1",
                    "-phase", "TEST")
    assert code == 0 and "extra" not in log
    code, log = run(capfd, "time", "-model", "net.prototxt", "-iterations", "1",
                    "-phase", "TEST", "-stage", "deploy")
    assert code == 0 and "extra" in log


@pytest.mark.parametrize("argv, message", [
    (("test", "-model", "net.prototxt", "-weights", "w", "-gpu", "abc"), "-gpu 'abc'"),
    (("time", "-model", "net.prototxt", "-iterations", "0"), "-iterations must be at least 1"),
    (("test", "-model", "net.prototxt", "-weights", "w", "-iterations", "0"),
     "-iterations must be at least 1"),
])
def test_bad_flag_values_are_named(workdir, capfd, argv, message):
    code, log = run(capfd, *argv)
    assert code == 1 and message in log and "Traceback" not in log


def test_device_query_follows_caffe(workdir, capfd):
    from caffelite import backend
    code, log = run(capfd, "device_query")
    assert code == 0 and re.search(r"\] Querying GPUs $", log, re.M)
    if not backend.gpu_available():
        code, log = run(capfd, "device_query", "-gpu", "0")
        assert code == 1 and "no CUDA device is usable" in log


def test_flags_before_the_command_and_bad_signal_effects(workdir, capfd):
    code, log = run(capfd, "-model", "net.prototxt", "-iterations", "1", "time")
    assert code == 0 and "*** Benchmark ends ***" in log
    code, log = run(capfd, "train", "-solver", "solver.prototxt", "-sigint_effect", "bogus")
    assert code == 1 and 'Invalid signal effect "bogus" was specified' in log
    code, log = run(capfd)
    assert code == 0 and "usage: caffelite <command>" in log


def test_upgrade_tools_exit_2_on_a_file_they_cannot_parse(tmp_path, capfd):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "a" bogus: 1 }\n')
    for tool, kind in (("upgrade_net_proto_text", "NetParameter"),
                       ("upgrade_solver_proto_text", "SolverParameter")):
        code, log = run(capfd, tool, str(bad), str(tmp_path / "out"))
        assert code == 2 and f"Failed to parse input text file as {kind}: {bad}" in log
    (tmp_path / "bad.bin").write_bytes(b"garbage")
    code, log = run(capfd, "upgrade_net_proto_binary", str(tmp_path / "bad.bin"),
                    str(tmp_path / "out.bin"))
    assert code == 2 and "Failed to parse input binary file as NetParameter" in log
