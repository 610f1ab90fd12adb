"""``.caffemodel.h5`` weights in Caffe's layout: ``/data/<layer>/<i>`` (and ``/diff/...``).

h5py is the ``hdf5`` extra; files are recognised by their signature, not their extension.
"""
import os

import numpy as np

from ..errors import WeightsError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == HDF5_SIGNATURE


def _h5py():
    try:
        import h5py
    except ImportError:
        raise WeightsError("reading or writing HDF5 weights needs h5py: "
                           "pip install 'caffelite[hdf5]'") from None
    return h5py


def read_hdf5_weights(net, path):
    """Plan [(target blob, data, diff)] as Caffe's CopyTrainedLayersFromHDF5."""
    import logging
    h5py = _h5py()
    log = logging.getLogger("caffelite")
    plan = []
    owners = net.param_owner_map()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{path}: cannot open as HDF5 ({e})") from None
    with f:
        if "data" not in f:
            raise WeightsError(f"{path}: HDF5 weights need a 'data' group (Caffe's layout)")
        data = f["data"]
        for name in data:
            index = net.first_layer_index(name)
            if index is None:
                log.info("Ignoring source layer %s", name)
                continue
            layer = net.layers[index]
            group = data[name]
            if len(group) > len(layer.blobs):
                raise WeightsError(f"{path}: Incompatible number of blobs for layer {name}: "
                                   f"the file has {len(group)}, the net's layer has "
                                   f"{len(layer.blobs)}")
            for j, dst in enumerate(layer.blobs):
                key = str(j)
                if key not in group:
                    if owners.get((index, j), -1) != -1:
                        continue  # a shared param: its owner carries the data
                    raise WeightsError(f"{path}: layer '{name}': blob {j} is missing from the "
                                       f"file (it has {len(group)} blobs)")
                arr = np.asarray(group[key], dtype=np.float32)
                if arr.shape != dst.shape:
                    raise WeightsError(
                        f"{path}: layer '{name}' blob {j}: the net expects shape {dst.shape}, "
                        f"the file has {arr.shape}. To learn this layer from scratch instead, "
                        f"rename the layer.")
                plan.append((dst, arr, None))     # Caffe reads the data group only
    return plan


def write_hdf5_weights(net, path, write_diff=False):
    """Caffe's Net::ToHDF5: a group per layer (blobs or not), the data of the params that
    own themselves, and (with ``write_diff``) every param's diff, shared or not."""
    from .. import backend
    h5py = _h5py()
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    owners = net.param_owner_map()
    with h5py.File(tmp, "w") as f:
        groups = [f.create_group("data")] + ([f.create_group("diff")] if write_diff else [])
        for index, (name, layer) in enumerate(zip(net._layer_names, net.layers)):
            if name in groups[0]:
                continue                      # a repeated layer name: the first one's
            sub = [g.create_group(name) for g in groups]
            for j, blob in enumerate(layer.blobs):
                if owners.get((index, j), -1) == -1:
                    sub[0].create_dataset(str(j), data=backend.asnumpy(blob.data))
                if write_diff:
                    sub[1].create_dataset(str(j), data=backend.asnumpy(blob.diff))
    os.replace(tmp, path)
