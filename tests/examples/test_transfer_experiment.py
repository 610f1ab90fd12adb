"""The transfer experiment runs end to end in its fast mode and writes its table and plot."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_transfer_experiment_fast(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, os.path.join(REPO, "examples", "transfer",
                                                       "transfer_experiment.py"),
                          "--fast", "--out", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "results.json").read_text())
    run = result["runs"][0]
    for key in ("scratch", "ft-all", "ft-top", "feat-conv1", "feat-ip1"):
        assert 0.2 < run[key] <= 1.0, (key, run[key])  # well above chance (0.2)
    assert "| ft-all |" in (tmp_path / "results.md").read_text()
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "transfer.png").stat().st_size > 1000
    except ImportError:
        pass
