"""caffelite parse_log: training logs (Caffe's and caffelite's) -> .train/.test CSV tables."""
import csv

import caffelite.cli.parse_log  # noqa: F401  (registers the command)
from caffelite.cli.main import main
from caffelite.cli.parse_log import parse_log, smoothed_loss

# A log as Caffe 1.0 writes it (glog file header, solver parameter dump without prefixes,
# the garbage iter/s of the first display), running across a year end.
CAFFE_LOG = """\
Log file created at: 2016/12/31 23:59:50
Running on machine: caffe-box
Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg
I1231 23:59:50.123456 12345 caffe.cpp:218] Using GPUs 0
I1231 23:59:50.234567 12345 caffe.cpp:223] GPU 0: GeForce GTX 1080
I1231 23:59:51.000001 12345 solver.cpp:44] Initializing solver from parameters:
test_iter: 100
test_interval: 200
base_lr: 0.01
lr_policy: "inv"
I1231 23:59:51.400000 12345 net.cpp:283] Network initialization done.
I1231 23:59:51.500000 12345 caffe.cpp:248] Starting Optimization
I1231 23:59:51.500000 12345 solver.cpp:272] Solving LeNet
I1231 23:59:51.500010 12345 solver.cpp:273] Learning Rate Policy: inv
I1231 23:59:51.600000 12345 solver.cpp:330] Iteration 0, Testing net (#0)
I1231 23:59:52.100000 12345 solver.cpp:397]     Test net output #0: accuracy = 0.0894
I1231 23:59:52.100020 12345 solver.cpp:397]     Test net output #1: loss = 2.36925 (* 1 = 2.36925 loss)
I1231 23:59:52.120000 12345 solver.cpp:218] Iteration 0 (-1.4013e-45 iter/s, 0.52s/100 iters), loss = 2.38312
I1231 23:59:52.120030 12345 solver.cpp:237]     Train net output #0: loss = 2.38312 (* 1 = 2.38312 loss)
I1231 23:59:52.120050 12345 sgd_solver.cpp:105] Iteration 0, lr = 0.01
I1231 23:59:59.500000 12345 solver.cpp:218] Iteration 100 (13.55 iter/s, 7.38s/100 iters), loss = 0.228
I1231 23:59:59.500030 12345 solver.cpp:237]     Train net output #0: loss = 0.228 (* 1 = 0.228 loss)
I1231 23:59:59.500050 12345 sgd_solver.cpp:105] Iteration 100, lr = 0.00992565
I0101 00:00:07.000000 12345 solver.cpp:330] Iteration 200, Testing net (#0)
I0101 00:00:07.400000 12345 data_layer.cpp:73] Restarting data prefetching from start.
I0101 00:00:07.500000 12345 solver.cpp:397]     Test net output #0: accuracy = 0.9713
I0101 00:00:07.500020 12345 solver.cpp:397]     Test net output #1: loss = 0.0905 (* 1 = 0.0905 loss)
I0101 00:00:07.600000 12345 solver.cpp:218] Iteration 200 (13.3 iter/s, 7.5s/100 iters), loss = 0.176
I0101 00:00:07.600030 12345 solver.cpp:237]     Train net output #0: loss = 0.176 (* 1 = 0.176 loss)
I0101 00:00:07.600050 12345 sgd_solver.cpp:105] Iteration 200, lr = 0.00985258
I0101 00:00:15.000000 12345 solver.cpp:447] Snapshotting to binary proto file lenet_iter_300.caffemodel
I0101 00:00:15.050000 12345 sgd_solver.cpp:273] Snapshotting solver state to binary proto file lenet_iter_300.solverstate
I0101 00:00:15.100000 12345 solver.cpp:310] Iteration 300, loss = 0.1
I0101 00:00:15.100010 12345 solver.cpp:330] Iteration 300, Testing net (#0)
I0101 00:00:15.500000 12345 solver.cpp:397]     Test net output #0: accuracy = 0.98
I0101 00:00:15.500020 12345 solver.cpp:397]     Test net output #1: loss = 0.06 (* 1 = 0.06 loss)
I0101 00:00:15.500030 12345 solver.cpp:315] Optimization Done.
I0101 00:00:15.500040 12345 caffe.cpp:259] Optimization Done.
"""


def read_csv_text(path):
    with open(path, newline="") as f:
        return f.read()


def test_caffe_log_tables(tmp_path, capfd):
    log = tmp_path / "caffe.INFO"
    log.write_text(CAFFE_LOG)
    assert main(["parse_log", str(log), str(tmp_path / "out")]) == 0
    # Caffe's script's format: float NumIters, Seconds of a row's first output line since
    # the 'Solving' line (here across the year end), CRLF rows (csv's excel dialect).
    # A train row takes the rate printed before it (the previous display's), the first row
    # of each table the second row's: Caffe's script does so, and its tables are these.
    assert read_csv_text(tmp_path / "out" / "caffe.INFO.train") == (
        "NumIters,Seconds,LearningRate,loss\r\n"
        "0.0,0.62003,0.01,2.38312\r\n"
        "100.0,8.00003,0.01,0.228\r\n"
        "200.0,16.10003,0.00992565,0.176\r\n")
    assert read_csv_text(tmp_path / "out" / "caffe.INFO.test") == (
        "NumIters,Seconds,LearningRate,accuracy,loss\r\n"
        "0.0,0.6,0.00992565,0.0894,2.36925\r\n"
        "200.0,16.0,0.00992565,0.9713,0.0905\r\n"
        "300.0,24.0,0.00985258,0.98,0.06\r\n")
    assert smoothed_loss(str(log)) == [(0, 2.38312), (100, 0.228), (200, 0.176), (300, 0.1)]


def test_caffelite_training_log(tmp_path, monkeypatch, capfd):
    (tmp_path / "net.prototxt").write_text("""name: "tiny"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "score"
  inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc"
  include { phase: TEST } }
""")
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "step"\ngamma: 0.5\nstepsize: 3\n'
        'display: 2\nmax_iter: 6\ntest_iter: 1\ntest_interval: 3\nrandom_seed: 1\n')
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--solver", "solver.prototxt"]) == 0
    out, err = capfd.readouterr()
    (tmp_path / "train.log").write_text(out + err)
    assert main(["parse_log", "train.log", "."]) == 0
    with open("train.log.train", newline="") as f:
        train = list(csv.DictReader(f))
    with open("train.log.test", newline="") as f:
        test = list(csv.DictReader(f))
    assert [r["NumIters"] for r in train] == ["0.0", "2.0", "4.0"]
    # rates printed at iterations 0, 2, 4: 0.1, 0.1, 0.05; each row takes the one before
    assert [float(r["LearningRate"]) for r in train] == [0.1, 0.1, 0.1]
    assert list(test[0]) == ["NumIters", "Seconds", "LearningRate", "acc", "loss"]
    assert [r["NumIters"] for r in test] == ["0.0", "3.0", "6.0"]
    seconds = [float(r["Seconds"]) for r in train]
    assert seconds == sorted(seconds) and 0 <= seconds[0] < 60
    logged = [line.split("loss = ")[1].split(" ")[0] for line in (out + err).splitlines()
              if "Train net output #0: loss" in line]
    assert [r["loss"] for r in train] == [str(float(v)) for v in logged]


def test_edge_cases_follow_caffes_script(tmp_path):
    # a single row is never complete: nothing is written, as Caffe's script writes nothing
    one = tmp_path / "one.log"
    one.write_text("I0310 10:00:00.000000  7 solver.py:1] Iteration 0, Testing net (#0)\n"
                   "I0310 10:00:01.000000  7 solver.py:2]     Test net output #0: acc = 0.5\n")
    assert parse_log(str(one)) == ([], [])
    assert main(["parse_log", str(one), str(tmp_path / "o")]) == 0
    assert not list((tmp_path / "o").iterdir())
    # 'nan' is not a number to the script's pattern, so that output is no column; a
    # progress line overwritten with '\r' hides nothing; without a 'Solving' line Seconds
    # count from the first timestamp
    log = tmp_path / "x.log"
    log.write_text(
        "I0310 10:00:00.000000  7 solver.py:1] Iteration 0, Testing net (#0)\n"
        "[0/10] 0 iter/s\rI0310 10:00:01.500000  7 solver.py:2]     Test net output #0: "
        "acc = 0.5\n"
        "I0310 10:00:01.600000  7 solver.py:3]     Test net output #1: loss = nan (* 1 = nan)\n"
        "I0310 10:00:03.000000  7 solver.py:1] Iteration 10, Testing net (#0)\n"
        "I0310 10:00:04.000000  7 solver.py:2]     Test net output #0: acc = 0.75\n")
    train, test = parse_log(str(log))
    assert train == []
    assert [(r["NumIters"], r["Seconds"], r["acc"]) for r in test] == [(0.0, 1.5, 0.5),
                                                                     (10.0, 4.0, 0.75)]
    assert "loss" not in test[0]
    assert main(["parse_log", str(log), str(tmp_path / "p"), "--delimiter", ";"]) == 0
    assert read_csv_text(tmp_path / "p" / "x.log.test").splitlines()[0] == \
        "NumIters;Seconds;LearningRate;acc"


def test_missing_log(tmp_path, capfd):
    assert main(["parse_log", str(tmp_path / "no.log"), str(tmp_path)]) == 1
    assert "no.log" in capfd.readouterr().err


def test_lines_without_a_timestamp_are_skipped(tmp_path):
    # as Caffe's script: a 13th month or a line without glog's prefix is passed over (its
    # iteration number still counts)
    log = tmp_path / "y.log"
    log.write_text("I0101 00:00:00.000000 1 a.cpp:1] Solving x\n"
                   "I1301 10:00:00.000000 1 a.cpp:1] Iteration 5 (1 iter/s, 1s/1 iters), loss = 1\n"
                   "    Train net output #0: loss = 1.5\n"
                   "I0101 00:00:01.000000 1 a.cpp:1] Iteration 5, lr = 0.2\n"
                   "I0101 00:00:02.250000 1 a.cpp:1]     Train net output #0: loss = 1.25\n"
                   "I0101 00:00:03.000000 1 a.cpp:1] Iteration 6 (1 iter/s, 1s/1 iters), loss = 1\n"
                   "I0101 00:00:03.500000 1 a.cpp:1]     Train net output #0: loss = 1.0\n")
    train, _ = parse_log(str(log))
    assert [(r["NumIters"], r["Seconds"], r["LearningRate"], r["loss"]) for r in train] == \
        [(5.0, 2.25, 0.2, 1.25), (6.0, 3.5, 0.2, 1.0)]
