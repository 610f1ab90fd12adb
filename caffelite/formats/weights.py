"""Copy trained weights into a net (Caffe's CopyTrainedLayersFrom) and save a net's weights."""
import os

import numpy as np

from .. import backend
from ..errors import WeightsError
from .blobproto import array_to_blobproto, blobproto_shape, blobproto_to_array, \
    legacy_shape_matches
from .prototxt import read_binary
from .upgrade import upgrade_net


def _is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def read_caffemodel(path):
    from ..proto import caffe_pb2
    param = caffe_pb2.NetParameter()
    read_binary(path, param)
    return upgrade_net(param, path)


def copy_trained_layers(net, path):
    """Match source layers to net layers by name; all checks pass before anything is copied."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise WeightsError(f"{path}: no such weights file")
    if _is_hdf5(path):
        from .hdf5 import read_hdf5_weights
        plan = read_hdf5_weights(net, path)
    else:
        plan = _plan_binary(net, path)
    for dst, data, diff in plan:
        dst.data[...] = backend.to_device(data, dst.xp)
        if diff is not None:
            dst.diff[...] = backend.to_device(diff, dst.xp)


def _plan_binary(net, path):
    import logging
    log = logging.getLogger("caffelite")
    source = read_caffemodel(path)
    plan = []
    for src in source.layer:
        if src.name not in net.layer_dict:
            log.info("Ignoring source layer %s", src.name)
            continue
        target = net.layer_dict[src.name]
        if len(src.blobs) != len(target.blobs):
            raise WeightsError(f"{path}: layer '{src.name}': the file has {len(src.blobs)} "
                               f"blobs, the net's layer has {len(target.blobs)} (did bias_term "
                               f"change?)")
        for i, (bp, dst) in enumerate(zip(src.blobs, target.blobs)):
            if not legacy_shape_matches(bp, dst.shape):
                raise WeightsError(
                    f"{path}: layer '{src.name}' blob {i}: the net expects shape {dst.shape}, "
                    f"the file has {blobproto_shape(bp)}. To learn this layer from scratch "
                    f"instead, rename the layer.")
            data = blobproto_to_array(bp).reshape(dst.shape)
            diff = None
            if len(bp.diff) or len(bp.double_diff):
                diff = blobproto_to_array(bp, return_diff=True).reshape(dst.shape)
            plan.append((dst, data, diff))
    return plan


def net_to_proto(net, write_diff=False):
    """NetParameter with every layer's parameter and its blobs, as Caffe's Net::ToProto."""
    from ..proto import caffe_pb2
    param = caffe_pb2.NetParameter()
    param.name = net.name
    for lp, layer in zip(net._layer_params, net.layers):
        out = param.layer.add()
        out.CopyFrom(lp)
        del out.blobs[:]
        for blob in layer.blobs:
            data = backend.asnumpy(blob.data)
            diff = backend.asnumpy(blob.diff) if write_diff else None
            out.blobs.add().CopyFrom(array_to_blobproto(data, diff))
    return param


def save_caffemodel(net, path, write_diff=False):
    """Write a binary caffemodel atomically (temporary file, then rename)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(net_to_proto(net, write_diff).SerializeToString())
    os.replace(tmp, path)
