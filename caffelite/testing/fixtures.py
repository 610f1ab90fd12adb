"""Replay a Caffe fixture case (``check: net``) and compare with Caffe's numbers."""
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..backend import asnumpy, get_array_module, to_device


@contextmanager
def chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def load_case(case_dir):
    case_dir = Path(case_dir)
    case = json.loads((case_dir / "case.json").read_text())
    data = dict(np.load(case_dir / "data.npz"))
    return case, data


def key(name):
    return name.replace("/", "__")


def case_layer_types(case):
    return set(case.get("layer_types", []))


def put(array, value):
    """array[...] = a stored host value, moved to array's device first (CuPy takes no
    implicit host-to-device copy in ``[...] =``)."""
    value = np.asarray(value, dtype=array.dtype)
    if value.size == array.size:
        value = value.reshape(array.shape)
    array[...] = to_device(value, get_array_module(array))


class Mismatch(AssertionError):
    pass


def _compare(what, actual, expected, rtol, atol):
    actual = np.asarray(asnumpy(actual), dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.size == expected.size and actual.shape != expected.shape:
        actual = actual.reshape(expected.shape)
    if actual.shape != expected.shape:
        raise Mismatch(f"{what}: shape {actual.shape}, Caffe has {expected.shape}")
    bad = np.abs(actual - expected) > atol + rtol * np.abs(expected)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise Mismatch(f"{what}: {int(bad.sum())} of {bad.size} values differ; first at flat "
                       f"index {i}: {actual.ravel()[i]!r} vs Caffe {expected.ravel()[i]!r}")


def replay_net_case(case_dir):
    """Build, forward, backward and compare every stored number of a ``net`` case."""
    import caffelite as caffe
    case, data = load_case(case_dir)
    rtol, atol = case.get("rtol", 1e-4), case.get("atol", 1e-5)
    phase = caffe.TRAIN if case["phase"] == "TRAIN" else caffe.TEST
    with chdir(case_dir):
        kwargs = {}
        if case.get("level") or case.get("stages"):
            kwargs = {"level": case.get("level", 0), "stages": case.get("stages", [])}
        if case.get("weights"):
            kwargs["weights"] = case["weights"]
        net = caffe.Net("net.prototxt", phase, **kwargs)
    if "layers" in case:
        assert list(net._layer_names) == case["layers"], \
            f"kept layers {list(net._layer_names)}, Caffe kept {case['layers']}"
    if "layer_types" in case:
        assert [l.type for l in net.layers] == case["layer_types"]
    if "blobs" in case:
        assert list(net.blobs) == case["blobs"], \
            f"blobs {list(net.blobs)}, Caffe has {case['blobs']}"
    if "net_outputs" in case:
        assert net.outputs == case["net_outputs"], \
            f"outputs {net.outputs}, Caffe has {case['net_outputs']}"
    for name, layer in net.layer_dict.items():
        for i, blob in enumerate(layer.blobs):
            k = f"param/{key(name)}/{i}"
            if k in data:
                _compare(k, blob.data, data[k], rtol, atol)
    for b in case.get("inputs", []):
        put(net.blobs[b].data, data[f"input/{key(b)}"])
    net.forward()
    for b in case.get("outputs", []):
        _compare(f"output/{b}", net.blobs[b].data, data[f"output/{key(b)}"], rtol, atol)
    for name in case.get("blobs_after", []):
        for i, blob in enumerate(net.layer_dict[name].blobs):
            k = f"blobs_after/{key(name)}/{i}"
            if k in data:
                _compare(k, blob.data, data[k], rtol, atol)
    if not case.get("backward"):
        return net
    net.clear_param_diffs()
    for layer in net.layers:  # statistics blobs (lr_mult 0) are not learnable params
        for blob in layer.blobs:
            blob.diff[...] = 0
    for b in case.get("top_diff", []):
        put(net.blobs[b].diff, data[f"top_diff/{key(b)}"])
    net.backward()
    for k in data:
        if k.startswith("bottom_diff/"):
            name = k[len("bottom_diff/"):]
            blob = next(bl for n, bl in net.blobs.items() if key(n) == name)
            _compare(k, blob.diff, data[k], rtol, atol)
        elif k.startswith("param_diff/"):
            _, lname, i = k.split("/")
            layer = next(l for n, l in net.layer_dict.items() if key(n) == lname)
            _compare(k, layer.blobs[int(i)].diff, data[k], rtol, atol)
    return net


def replay_variants_case(case_dir):
    """Every [prototxt, weights] pair of a ``variants`` case gives Caffe's outputs/params."""
    import caffelite as caffe
    case, data = load_case(case_dir)
    rtol, atol = case.get("rtol", 1e-4), case.get("atol", 1e-5)
    phase = caffe.TRAIN if case["phase"] == "TRAIN" else caffe.TEST
    for proto, weights in case["variants"]:
        where = f"{proto} + {weights}"
        with chdir(case_dir):
            net = caffe.Net(proto, weights, phase)
        for name, layer in net.layer_dict.items():
            for i, blob in enumerate(layer.blobs):
                k = f"param/{key(name)}/{i}"
                if k in data:
                    _compare(f"{where}: {k}", blob.data, data[k], rtol, atol)
                dk = f"param_diff/{key(name)}/{i}"
                if dk in data and weights.endswith("diff.caffemodel"):
                    _compare(f"{where}: {dk}", blob.diff, data[dk], rtol, atol)
        for b in case.get("inputs", []):
            net.blobs[b].data[...] = data[f"input/{key(b)}"]
        net.forward()
        for b in case.get("outputs", []):
            _compare(f"{where}: output/{b}", net.blobs[b].data, data[f"output/{key(b)}"],
                     rtol, atol)


def _feed(net, data, i):
    net.blobs["data"].data[...] = data["batch/data"][i]
    net.blobs["label"].data[...] = data["batch/label"][i].reshape(net.blobs["label"].shape)


def _compare_final(net, data, rtol, atol, where):
    for name, layer in net.layer_dict.items():
        for i, blob in enumerate(layer.blobs):
            k = f"final/{key(name)}/{i}"
            if k in data:
                _compare(f"{where}: {k}", blob.data, data[k], rtol, atol)


def replay_solver_case(case_dir):
    """Step a solver through Caffe's batches; compare per-iteration losses and final weights."""
    import caffelite as caffe
    case, data = load_case(case_dir)
    rtol, atol = case.get("rtol", 1e-3), case.get("atol", 1e-4)
    with chdir(case_dir):
        solver = caffe.get_solver(case["solver"])
        solver.net.copy_from(case["init"])
        losses = []
        for i in range(case["iterations"]):
            _feed(solver.net, data, i)
            solver.step(1)
            losses.append(float(np.asarray(asnumpy(solver.net.blobs["loss"].data))))
    _compare("loss per iteration", np.array(losses), data["loss"], rtol, atol)
    _compare_final(solver.net, data, rtol, atol, case["name"])
    return solver


def replay_restore_case(case_dir):
    """Parse a snapshot's state, restore it and continue on Caffe's batches."""
    import caffelite as caffe
    from ..solvers.state import read_state
    case, data = load_case(case_dir)
    rtol, atol = case.get("rtol", 1e-3), case.get("atol", 1e-4)
    with chdir(case_dir):
        it, learned_net, current_step, history = read_state(case["solverstate"])
        expected = case["state"]
        assert (it, learned_net, current_step) == \
            (expected["iter"], expected["learned_net"], expected["current_step"])
        for i, h in enumerate(history):
            _compare(f"history/{i}", h, data[f"history/{i}"], rtol, atol)
        solver = caffe.get_solver(case["solver"])
        solver.restore(case["solverstate"])
        assert solver.iter == case["resume_iter"]
        losses = []
        for i in case["batches_used"]:
            _feed(solver.net, data, i)
            solver.step(1)
            losses.append(float(np.asarray(asnumpy(solver.net.blobs["loss"].data))))
    _compare("loss per iteration", np.array(losses), data["loss"], rtol, atol)
    _compare_final(solver.net, data, rtol, atol, case["name"])
    return solver


def replay_mean_case(case_dir):
    """A mean .binaryproto, read with legacy 4-D dims, equals the array pycaffe read."""
    from ..io import load_mean_file
    case, data = load_case(case_dir)
    with chdir(case_dir):
        mean = load_mean_file(case["file"])
    _compare("mean", mean, data["mean"], case.get("rtol", 1e-4), case.get("atol", 1e-5))
    return mean
