"""caffelite plot_training_log: loss/accuracy curves of a log drawn to an image file."""
import sys

import pytest

import caffelite.cli.plot_training_log as plot_training_log  # registers the command
from caffelite.cli.main import main

LOG = "".join(
    [f"I0310 10:00:{i // 10:02d}.{i % 10:06d} 7 solver.cpp:218] Iteration {i * 10} "
     f"(5 iter/s, 2s/10 iters), loss = {2.3 / (1 + i):.6g}\n"
     f"I0310 10:00:{i // 10:02d}.{i % 10:06d} 7 solver.cpp:237]     Train net output #0: "
     f"loss = {2.3 / (1 + i):.6g} (* 1 = {2.3 / (1 + i):.6g} loss)\n"
     f"I0310 10:00:{i // 10:02d}.{i % 10:06d} 7 sgd_solver.cpp:105] Iteration {i * 10}, "
     f"lr = 0.01\n" +
     (f"I0310 10:00:{i // 10:02d}.{i % 10:06d} 7 solver.cpp:330] Iteration {i * 10}, "
      f"Testing net (#0)\n"
      f"I0310 10:00:{i // 10:02d}.{i % 10:06d} 7 solver.cpp:397]     Test net output #0: "
      f"accuracy = {0.1 + 0.08 * i:.6g}\n"
      f"I0310 10:00:{i // 10:02d}.{i % 10:06d} 7 solver.cpp:397]     Test net output #1: "
      f"loss = {2.0 / (1 + i):.6g} (* 1 = {2.0 / (1 + i):.6g} loss)\n" if i % 3 == 0 else "")
     for i in range(12)])


def test_png_is_written(tmp_path, capfd):
    pytest.importorskip("matplotlib")
    from PIL import Image
    (tmp_path / "train.log").write_text(LOG)
    out = tmp_path / "curves.png"
    assert main(["plot_training_log", str(tmp_path / "train.log"), str(out)]) == 0
    assert "Plotted train loss, test loss, test accuracy to" in capfd.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as im:
        assert im.size == (900, 550)
        assert len(im.convert("RGB").getcolors(1 << 16)) > 20  # something was drawn


def test_smoothed_loss_when_no_train_outputs(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "old.log").write_text(
        "I0310 10:00:00.000000 7 solver.cpp:209] Iteration 0, loss = 2.3\n"
        "I0310 10:00:01.000000 7 solver.cpp:209] Iteration 100, loss = 0.5\n")
    labels = plot_training_log.plot_training_log(str(tmp_path / "old.log"),
                                                 str(tmp_path / "o.png"), title="old")
    assert labels == ["train loss"] and (tmp_path / "o.png").exists()


def test_errors(tmp_path, capfd, monkeypatch):
    (tmp_path / "empty.log").write_text("I0310 10:00:00.000000 7 caffe.cpp:1] Use CPU.\n")
    if "matplotlib" in sys.modules or _has_matplotlib():
        assert main(["plot_training_log", str(tmp_path / "empty.log"), str(tmp_path / "e.png")]) == 1
        assert "no training or test outputs" in capfd.readouterr().err
    # without matplotlib: an error that says how to get it
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["plot_training_log", str(tmp_path / "empty.log"), str(tmp_path / "e.png")]) == 1
    assert "pip install 'caffelite[plot]'" in capfd.readouterr().err


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_caffes_chart_types(tmp_path, capfd):
    # Caffe's plot_training_log.py.example: chart type, output, then one or more logs
    (tmp_path / "a.log").write_text(LOG)
    (tmp_path / "b.log").write_text(LOG.replace("loss = 2", "loss = 3"))
    xs, ys = plot_training_log.chart_points(str(tmp_path / "a.log"), 0)
    assert xs == [0.0, 30.0, 60.0, 90.0] and ys[0] == pytest.approx(0.1)
    xs, ys = plot_training_log.chart_points(str(tmp_path / "a.log"), 4)
    assert xs == [i * 10 for i in range(12)] and set(ys) == {0.01}
    xs, ys = plot_training_log.chart_points(str(tmp_path / "a.log"), 7)
    assert xs[1] == pytest.approx(0.000001) and ys[0] == pytest.approx(2.3)
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.png"
    assert main(["plot_training_log", "6", str(out), str(tmp_path / "a.log"),
                 str(tmp_path / "b.log")]) == 0
    assert "Plotted Train loss vs. Iters of 2 log(s)" in capfd.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot_training_log", "9", str(out), str(tmp_path / "a.log")]) == 1
    assert "chart type 9 is not one of 0-7" in capfd.readouterr().err
