"""Every tutorial in examples/ runs in --fast mode, writes readable PNGs and prints its result.

Each script runs in a subprocess (as a user would run it, from a clone: PYTHONPATH is the
repository root) with ``--fast --out <tmp>``. BLAS is kept to one thread: the nets here are
tiny, and on a busy 2-core machine multi-threaded BLAS makes them several times slower.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

pytest.importorskip("matplotlib", reason="the tutorials draw with matplotlib (the plot extra)")
Image = pytest.importorskip("PIL.Image")


def run_example(name, out):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--fast", "--out", str(out)],
                          cwd=str(out), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def check_pngs(out, names):
    for name in names:
        path = out / name
        assert path.is_file(), f"{name} was not written"
        with Image.open(path) as im:
            assert im.format == "PNG"
            im.load()                              # decodes the whole file
            assert im.width >= 200 and im.height >= 150, f"{name} is {im.size}"


def number(pattern, text):
    m = re.search(pattern, text)
    assert m, f"no line matching {pattern!r} in:\n{text}"
    return float(m.group(1))


def test_01_classification_and_filters(tmp_path):
    out = run_example("01_classification_and_filters.py", tmp_path)
    check_pngs(tmp_path, ["prediction.png", "conv1_filters.png", "conv1_maps.png",
                          "pool1_maps.png", "conv2_maps.png"])
    assert (tmp_path / "digit.png").is_file()
    ranks = re.findall(r"^\s+\d\. digit (\d)\s+p = ([\d.]+)$", out, re.M)
    assert len(ranks) == 5
    probs = [float(p) for _, p in ranks]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    assert re.search(r"^predicted: \d \(p = [\d.]+\), true: 7$", out, re.M)


def test_02_lenet_solver_api(tmp_path):
    out = run_example("02_lenet_solver_api.py", tmp_path)
    check_pngs(tmp_path, ["learning_curve.png"])
    assert number(r"final test accuracy: ([\d.]+)", out) > 0.3     # chance is 0.1


def test_03_logistic_regression_hdf5(tmp_path):
    pytest.importorskip("h5py", reason="HDF5Data needs h5py (the hdf5 extra)")
    out = run_example("03_logistic_regression_hdf5.py", tmp_path)
    check_pngs(tmp_path, ["accuracy.png"])
    linear = number(r"logistic regression accuracy: ([\d.]+)", out)
    two_layer = number(r"two-layer net accuracy:\s+([\d.]+)", out)
    assert 0.55 < linear < two_layer


def test_04_finetuning(tmp_path):
    out = run_example("04_finetuning.py", tmp_path)
    check_pngs(tmp_path, ["finetune_vs_scratch.png"])
    assert "Ignoring source layer ip2" in out
    assert 0.0 <= number(r"fine-tuned accuracy:\s+([\d.]+)", out) <= 1.0
    assert 0.0 <= number(r"from-scratch accuracy:\s+([\d.]+)", out) <= 1.0
    assert list(tmp_path.glob("pretrain_iter_*.caffemodel"))


def test_05_net_surgery_fcn(tmp_path):
    out = run_example("05_net_surgery_fcn.py", tmp_path)
    check_pngs(tmp_path, ["score_map.png", "class_maps.png"])
    assert number(r"max abs difference over \d+ positions: scores ([\d.e+-]+)", out) < 1e-4
    assert number(r"probabilities ([\d.e+-]+)", out) < 1e-5
    assert number(r"reloaded \S+: max abs difference ([\d.e+-]+)", out) == 0.0
    assert "score map 8×8" in out


def test_06_siamese_mnist(tmp_path):
    out = run_example("06_siamese_mnist.py", tmp_path)
    check_pngs(tmp_path, ["embedding.png"])
    assert "conv1 and conv1_p share: True" in out
    accuracy = number(r"nearest-centre accuracy in the 2-D embedding: ([\d.]+)", out)
    assert 0.0 <= accuracy <= 1.0


def test_07_feature_extraction(tmp_path):
    out = run_example("07_feature_extraction.py", tmp_path)
    check_pngs(tmp_path, ["accuracy_per_layer.png"])
    diffs = re.findall(r"extract_features vs net.blobs: max abs difference ([\d.e+-]+)", out)
    assert len(diffs) == 5 and max(float(d) for d in diffs) < 1e-5
    accs = re.findall(r"^\s+(\w+)\s+\d+ features\s+accuracy ([\d.]+)$", out, re.M)
    assert [layer for layer, _ in accs] == ["conv1", "pool1", "conv2", "pool2", "ip1"]
    assert all(float(a) > 0.3 for _, a in accs)
    assert re.search(r"^best layer: \w+", out, re.M)
