"""The training loop: update rules against NumPy references, snapshots, exact resume,
iter_size, clipping, testing, and clear errors for bad solver files."""
import os
import subprocess
import sys

import numpy as np
import pytest

import caffelite as caffe
from caffelite.errors import CaffeliteError
from caffelite.solvers import NonFiniteLossError

from solver_helpers import batch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def grads_and_params(solver):
    """Forward/backward once at the current weights: (params, diffs) as float64 copies."""
    net = solver.net
    net.clear_param_diffs()
    x, y = batch(solver.iter)
    net.blobs["data"].data[...] = x
    net.blobs["label"].data[...] = y
    net.forward_backward()
    return ([b.data.astype(np.float64).copy() for b in net.learnable_params],
            [b.diff.astype(np.float64).copy() for b in net.learnable_params])


RULES = {
    "SGD": "momentum: 0.9",
    "Nesterov": "momentum: 0.9",
    "AdaGrad": "delta: 1e-6",
    "RMSProp": "rms_decay: 0.9 delta: 1e-6",
    "AdaDelta": "momentum: 0.95 delta: 1e-6",
    "Adam": "momentum: 0.9 momentum2: 0.999 delta: 1e-8",
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_update_rule_matches_reference(make_solver, rule):
    solver = make_solver(f'type: "{rule}"\nbase_lr: 0.1\nlr_policy: "fixed"\n'
                         f'weight_decay: 0.01\n{RULES[rule]}\n', feed=False)
    p = solver.param
    lr_mults = solver.net.params_lr
    decay_mults = solver.net.params_weight_decay
    n = len(lr_mults)
    hist = [np.zeros(b.shape) for b in solver.net.learnable_params]
    hist2 = [np.zeros(b.shape) for b in solver.net.learnable_params]
    for it in range(3):
        w, g = grads_and_params(solver)
        expected = []
        for i in range(n):
            gi = g[i] + p.weight_decay * decay_mults[i] * w[i]
            lr = p.base_lr * lr_mults[i]
            if rule == "SGD":
                hist[i] = p.momentum * hist[i] + lr * gi
                step = hist[i]
            elif rule == "Nesterov":
                prev = hist[i].copy()
                hist[i] = p.momentum * hist[i] + lr * gi
                step = (1 + p.momentum) * hist[i] - p.momentum * prev
            elif rule == "AdaGrad":
                hist[i] += gi ** 2
                step = lr * gi / (np.sqrt(hist[i]) + p.delta)
            elif rule == "RMSProp":
                hist[i] = p.rms_decay * hist[i] + (1 - p.rms_decay) * gi ** 2
                step = lr * gi / (np.sqrt(hist[i]) + p.delta)
            elif rule == "AdaDelta":
                rho = p.momentum
                hist[i] = rho * hist[i] + (1 - rho) * gi ** 2
                u = gi * np.sqrt((hist2[i] + p.delta) / (hist[i] + p.delta))
                hist2[i] = rho * hist2[i] + (1 - rho) * u ** 2
                step = lr * u
            else:
                t = it + 1
                hist[i] = p.momentum * hist[i] + (1 - p.momentum) * gi
                hist2[i] = p.momentum2 * hist2[i] + (1 - p.momentum2) * gi ** 2
                corr = np.sqrt(1 - p.momentum2 ** t) / (1 - p.momentum ** t)
                step = lr * corr * hist[i] / (np.sqrt(hist2[i]) + p.delta)
            expected.append(w[i] - step)
        solver.net.clear_param_diffs()
        x, y = batch(solver.iter)
        solver.net.blobs["data"].data[...] = x
        solver.net.blobs["label"].data[...] = y
        solver.net.forward_backward()
        solver.apply_update()
        assert solver.iter == it + 1
        for e, b in zip(expected, solver.net.learnable_params):
            np.testing.assert_allclose(b.data, e, rtol=2e-5, atol=2e-6)
    assert len(solver.history) == (2 if rule in ("AdaDelta", "Adam") else 1) * n


def test_momentum_is_refused_by_adagrad_and_rmsprop(make_solver):
    for rule in ("AdaGrad", "RMSProp"):
        with pytest.raises(CaffeliteError, match=f"solver.prototxt.*momentum.*{rule}"):
            make_solver(f'type: "{rule}"\nbase_lr: 0.1\nlr_policy: "fixed"\nmomentum: 0.9\n')


def test_iter_size_averages_and_clipping_scales_the_summed_gradient(make_solver, caplog):
    solver = make_solver('base_lr: 0.1\nlr_policy: "fixed"\niter_size: 2\n'
                         'clip_gradients: 0.01\ndisplay: 1\n')
    w0 = [b.data.copy() for b in solver.net.learnable_params]
    _, g = grads_and_params(solver)  # the same batch twice: the sum is 2g
    norm = np.sqrt(sum(((2 * gi) ** 2).sum() for gi in g))
    import logging
    log = logging.getLogger("caffelite")
    log.addHandler(caplog.handler)  # the CLI may have stopped propagation to the root
    try:
        with caplog.at_level("INFO", logger="caffelite"):
            solver.step(1)
    finally:
        log.removeHandler(caplog.handler)
    assert "Gradient clipping: scaling down gradients" in caplog.text
    scale = 0.01 / norm
    for b, w, gi, m in zip(solver.net.learnable_params, w0, g, solver.net.params_lr):
        np.testing.assert_allclose(b.data, w - 0.1 * m * (2 * gi * scale) / 2, rtol=1e-4,
                                   atol=1e-7)


def test_snapshot_files_and_formats(make_solver, tmp_path):
    solver = make_solver('base_lr: 0.1\nlr_policy: "fixed"\nmomentum: 0.9\nsnapshot: 2\n'
                         'max_iter: 4\n')
    solver.solve()
    names = sorted(os.listdir(tmp_path))
    assert "snap_iter_2.caffemodel" in names and "snap_iter_4.solverstate" in names
    assert not [n for n in names if n.endswith(".tmp") or n.endswith(".tempfile")]
    solver = make_solver('base_lr: 0.1\nlr_policy: "fixed"\nsnapshot_format: HDF5\n')
    solver.step(1)
    solver.snapshot()
    assert os.path.exists(tmp_path / "snap_iter_1.caffemodel.h5")
    assert os.path.exists(tmp_path / "snap_iter_1.solverstate.h5")
    other = make_solver('base_lr: 0.1\nlr_policy: "fixed"\nsnapshot_format: HDF5\n')
    other.restore(str(tmp_path / "snap_iter_1.solverstate.h5"))
    assert other.iter == 1
    for a, b in zip(solver.net.learnable_params, other.net.learnable_params):
        np.testing.assert_array_equal(a.data, b.data)


RESUME_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import caffelite as caffe
from solver_helpers import batch
solver = caffe.get_solver({solver!r})
def on_start():
    x, y = batch(solver.iter)
    solver.net.blobs["data"].data[...] = x
    solver.net.blobs["label"].data[...] = y
solver.add_callback(on_start, lambda: None)
solver.restore({state!r})
solver.step(10)
solver.net.save({out!r})
"""


@pytest.mark.parametrize("rule", ["SGD", "Adam"])
def test_resume_in_a_fresh_process_continues_the_same_trajectory(make_solver, tmp_path, rule):
    extra = f'type: "{rule}"\nbase_lr: 0.05\nlr_policy: "step"\ngamma: 0.5\nstepsize: 7\n' \
            f'momentum: 0.9\nweight_decay: 0.001\n'
    straight = make_solver(extra)
    init = [b.data.copy() for b in straight.net.learnable_params]
    straight.step(20)
    half = make_solver(extra)
    for b, w in zip(half.net.learnable_params, init):
        b.data[...] = w
    half.step(10)
    half.snapshot()
    script = RESUME_SCRIPT.format(tests=os.path.dirname(__file__), solver=str(tmp_path / "solver.prototxt"),
                                  state=str(tmp_path / "snap_iter_10.solverstate"),
                                  out=str(tmp_path / "resumed.caffemodel"))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=str(tmp_path))
    resumed = caffe.Net(str(tmp_path / "net.prototxt"), str(tmp_path / "resumed.caffemodel"),
                        caffe.TRAIN)
    for name in ("fc1", "fc2"):
        for a, b in zip(straight.net.params[name], resumed.params[name]):
            np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)


def test_test_nets_share_weights_and_average_outputs(make_solver, tmp_path):
    solver = make_solver('base_lr: 0.1\nlr_policy: "fixed"\ntest_iter: 3\ntest_interval: 2\n'
                         'test_initialization: false\n')
    assert len(solver.test_nets) == 1
    solver.step(2)
    scores = solver.test(0)
    assert set(scores) == {"loss"}
    assert solver.test_nets[0].params["fc1"][0].shares_memory_with(solver.net.params["fc1"][0])


def test_non_finite_loss_names_iteration_and_layer(make_solver):
    solver = make_solver('base_lr: 1e30\nlr_policy: "fixed"\n')
    with pytest.raises(NonFiniteLossError, match="iteration [0-9]+.*layer '"):
        solver.step(5)


@pytest.mark.parametrize("extra, match", [
    ('type: "Fancy"\nbase_lr: 0.1\nlr_policy: "fixed"\n', "unknown solver type 'Fancy'"),
    ('base_lr: 0.1\nlr_policy: "wavy"\n', "unknown lr_policy 'wavy'"),
    ('base_lr: 0.1\nlr_policy: "step"\nstepsize: 0\n', "stepsize > 0"),
    ('base_lr: 0.1\nlr_policy: "fixed"\ntest_iter: 5\n', "test_interval"),
    ('base_lr: 0.1\nlr_policy: "fixed"\ntest_net: "x.prototxt"\n', "test_iter"),
    ('base_lr: 0.1\nlr_policy: "fixed"\nsnapshot: 10\nsnapshot_prefix: "/nonexistent/dir/p"\n',
     "cannot write to snapshot_prefix"),
    ('base_lr: 0.1\nlr_policy: "fixed"\nregularization_type: "L3"\n', "regularization_type"),
])
def test_bad_solver_files_name_the_file_and_field(make_solver, extra, match):
    with pytest.raises(CaffeliteError, match=f"solver.prototxt.*{match}"):
        make_solver(extra)


def test_missing_net_file(tmp_path):
    (tmp_path / "s.prototxt").write_text('net: "nope.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n')
    with pytest.raises(CaffeliteError, match="nope.prototxt"):
        caffe.get_solver(str(tmp_path / "s.prototxt"))


def test_deprecated_solver_type_is_upgraded(make_solver):
    solver = make_solver('solver_type: ADAM\nbase_lr: 0.1\nlr_policy: "fixed"\n')
    assert isinstance(solver, caffe.AdamSolver) and solver.param.type == "Adam"


def test_a_solver_class_uses_its_own_rule_whatever_the_file_says(make_solver, tmp_path):
    # Caffe's SGDSolver(file) never reads `type`: an Adam file runs plain SGD there too
    import logging
    make_solver('type: "Adam"\nbase_lr: 0.1\nlr_policy: "fixed"\n')
    seen = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())
    logging.getLogger("caffelite").addHandler(handler)
    try:
        solver = caffe.SGDSolver(str(tmp_path / "solver.prototxt"))
    finally:
        logging.getLogger("caffelite").removeHandler(handler)
    assert type(solver) is caffe.SGDSolver and solver.type == "SGD"
    assert any("solver type 'Adam', but this is a SGDSolver" in m for m in seen)
    assert len(solver.history) == len(solver.net.learnable_params)   # SGD: one block


@pytest.mark.parametrize("solver_debug", [True, False])
def test_test_nets_take_the_solvers_debug_info(make_solver, solver_debug):
    from conftest import NET
    text = f'debug_info: {str(solver_debug).lower()}\nbase_lr: 0.1\nlr_policy: "fixed"\n' \
           'test_iter: 1\ntest_interval: 10\n'
    solver = make_solver(text, net="debug_info: true\n" + NET)
    assert [n.debug_info for n in solver.test_nets] == [solver_debug]
