"""Snapshots (.caffemodel + .solverstate, or their .h5 forms) and restore."""
import os

import numpy as np

from .. import backend
from ..errors import CaffeliteError
from ..formats.blobproto import array_to_blobproto, blobproto_to_array
from ..formats.prototxt import read_binary
from ..formats.weights import save_weights


def snapshot(solver):
    """Write the weights, then the state that names them; each file appears atomically."""
    from ..proto import caffe_pb2
    p = solver.param
    hdf5 = p.snapshot_format == caffe_pb2.SolverParameter.HDF5
    model = solver.snapshot_filename(".caffemodel.h5" if hdf5 else ".caffemodel")
    solver.log.info("Snapshotting to %s %s", "HDF5 file" if hdf5 else "binary proto file", model)
    save_weights(solver.net, model, write_diff=p.snapshot_diff)
    state_file = solver.snapshot_filename(".solverstate.h5" if hdf5 else ".solverstate")
    solver.log.info("Snapshotting solver state to %s %s",
                    "HDF5 file" if hdf5 else "binary proto file", state_file)
    history = [backend.asnumpy(h) for h in solver.history]
    tmp = f"{state_file}.tmp"
    if hdf5:
        from ..formats.hdf5 import _h5py
        h5py = _h5py()
        with h5py.File(tmp, "w") as f:
            # Caffe's layout: 1-element int32 datasets and a fixed-length byte string
            f.create_dataset("iter", data=np.array([solver.iter], dtype=np.int32))
            f.create_dataset("learned_net", data=np.bytes_(model.encode()))
            f.create_dataset("current_step", data=np.array([solver.current_step], np.int32))
            group = f.create_group("history")
            for i, h in enumerate(history):
                group.create_dataset(str(i), data=h)
    else:
        state = caffe_pb2.SolverState(iter=solver.iter, learned_net=model,
                                      current_step=solver.current_step)
        for h in history:
            state.history.add().CopyFrom(array_to_blobproto(h))
        with open(tmp, "wb") as f:
            f.write(state.SerializeToString())
    os.replace(tmp, state_file)
    return model


def read_state(path):
    """(iter, learned_net, current_step, [history arrays]) from either format."""
    from ..proto import caffe_pb2
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CaffeliteError(f"{path}: no such solver state file")
    if path.endswith(".h5"):
        from ..formats.hdf5 import _h5py
        h5py = _h5py()
        with h5py.File(path, "r") as f:
            learned = f["learned_net"][()] if "learned_net" in f else b""
            learned = learned.decode() if isinstance(learned, bytes) else str(learned)
            group = f["history"]
            history = [np.asarray(group[str(i)], dtype=np.float32) for i in range(len(group))]
            def scalar(name):
                return int(np.asarray(f[name][()]).ravel()[0]) if name in f else 0
            return scalar("iter"), learned, scalar("current_step"), history
    state = read_binary(path, caffe_pb2.SolverState())
    return state.iter, state.learned_net, state.current_step, \
        [blobproto_to_array(b) for b in state.history]


def restore(solver, path):
    it, learned_net, current_step, history = read_state(path)
    if len(history) != len(solver.history):
        raise CaffeliteError(f"{path}: the state holds {len(history)} history blobs, this "
                             f"{solver.type} solver needs {len(solver.history)}")
    for i, (h, dst) in enumerate(zip(history, solver.history)):
        if h.size != dst.size:
            raise CaffeliteError(f"{path}: history blob {i} has {h.size} values, the net's "
                                 f"parameter has {dst.size}")
    if learned_net:
        solver.net.copy_from(learned_net)
    solver.iter, solver.current_step = it, current_step
    solver.log.info("SGDSolver: restoring history")
    for h, dst in zip(history, solver.history):
        dst[...] = backend.to_device(h.reshape(dst.shape), backend.get_array_module(dst))
