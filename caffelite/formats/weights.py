"""Copy trained weights into a net (Caffe's CopyTrainedLayersFrom) and save a net's weights.

Copying is all or nothing: every blob is checked against the net before any is written.
"""
import logging
import os

from .. import backend
from ..errors import WeightsError
from .caffemodel import CaffemodelFile, write_caffemodel
from .hdf5 import is_hdf5, read_hdf5_weights, write_hdf5_weights

log = logging.getLogger("caffelite")


def _legacy_matches(raw, shape):
    """Caffe's Blob::ShapeEquals: legacy 4-D dims compared right-aligned, padded with 1s."""
    if raw.legacy:
        if len(shape) > 4:
            return False
        return (1,) * (4 - len(shape)) + tuple(shape) == raw.shape
    return raw.shape == tuple(shape)


def _plan_binary(net, model):
    """[(target blobs, [(data, diff)], layer span)] after checking every blob against the net."""
    path = model.path
    plan = []
    for name, blobs, span in model.layers:
        index = net.first_layer_index(name)
        if index is None:
            log.info("Ignoring source layer %s", name)
            continue
        target = net.layers[index]
        model.check(name, blobs)
        if len(blobs) != len(target.blobs):
            raise WeightsError(f"{path}: Incompatible number of blobs for layer {name}: the "
                               f"file has {len(blobs)}, the net's layer has "
                               f"{len(target.blobs)} (did bias_term change?)")
        arrays = []
        for i, (raw, dst) in enumerate(zip(blobs, target.blobs)):
            if not _legacy_matches(raw, dst.shape):
                raise WeightsError(
                    f"{path}: layer '{name}' blob {i}: the net expects shape {dst.shape}, the "
                    f"file has {raw.shape}. To learn this layer from scratch instead, rename "
                    f"the layer.")
            diff = raw.diff.reshape(dst.shape) if raw.diff is not None and \
                raw.diff.size else None
            arrays.append((raw.data.reshape(dst.shape), diff))
        plan.append((target.blobs, arrays, span))
    return plan


def _copy(dst, data, diff):
    dst.data[...] = backend.to_device(data, dst.xp)
    if diff is not None:
        dst.diff[...] = backend.to_device(diff, dst.xp)


def copy_trained_layers(net, path):
    """Check every blob of the file against the net, then copy (all or nothing)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such weights file")
    if is_hdf5(path):
        for dst, data, diff in read_hdf5_weights(net, path):
            _copy(dst, data, diff)
        return
    model = CaffemodelFile(path)
    plan = _plan_binary(net, model)
    if not any(arrays for _, arrays, _ in plan) and any(l.blobs for l in net.layers):
        names = ", ".join(name for name, blobs, _ in model.layers if blobs) or "none"
        log.warning("NOTHING WAS TRANSFERRED from %s: none of its layers with weights (%s) "
                    "matches a layer name of net '%s'; every layer keeps its filler",
                    path, names, net.name)
    for targets, arrays, span in plan:
        for dst, (data, diff) in zip(targets, arrays):
            _copy(dst, data, diff)
        model.release(span)


def _layers_for_writing(net, write_diff):
    for lp, layer in zip(net._layer_params, net.layers):
        head = type(lp)()
        head.CopyFrom(lp)
        del head.blobs[:]
        if layer.is_loss and not head.loss_weight:
            head.loss_weight.append(1.0)      # Caffe's LossLayer::LayerSetUp adds it
        blobs = [(backend.asnumpy(b.data), backend.asnumpy(b.diff) if write_diff else None)
                 for b in layer.blobs]
        yield head, blobs


def save_caffemodel(net, path, write_diff=False):
    """Binary caffemodel in the current format (each layer's full parameter plus its blobs)."""
    write_caffemodel(path, net.name, _layers_for_writing(net, write_diff))


def save_weights(net, path, write_diff=False):
    """HDF5 when the name ends in .h5 (as Caffe's snapshot_format picks), else binary."""
    if os.fspath(path).endswith(".h5"):
        write_hdf5_weights(net, path, write_diff)
    else:
        save_caffemodel(net, path, write_diff)


def net_to_proto(net, write_diff=False):
    """NetParameter with every layer's parameter and its blobs, as Caffe's Net::ToProto."""
    from ..proto import caffe_pb2
    from .blobproto import array_to_blobproto
    param = caffe_pb2.NetParameter(name=net.name)
    for head, blobs in _layers_for_writing(net, write_diff):
        out = param.layer.add()
        out.CopyFrom(head)
        for data, diff in blobs:
            out.blobs.add().CopyFrom(array_to_blobproto(data, diff))
    return param
