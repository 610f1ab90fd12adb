"""Caffe's NetParameter upgrades, run whenever a net is read from a file (reference §3.11)."""
import logging

from ..errors import NetError

log = logging.getLogger("caffelite")


def needs_input_upgrade(net_param):
    return len(net_param.input) > 0


def upgrade_net_input(net_param):
    """Net-level ``input``/``input_shape``/``input_dim`` -> a prepended Input layer "input"."""
    from ..proto import caffe_pb2
    names = list(net_param.input)
    has_shape = len(net_param.input_shape) > 0
    has_dim = len(net_param.input_dim) > 0
    if has_shape or has_dim:
        if has_shape and len(net_param.input_shape) != len(names):
            raise NetError(f"net '{net_param.name}': {len(names)} inputs but "
                           f"{len(net_param.input_shape)} input_shape entries")
        # with input_shape present, Caffe ignores input_dim
        if not has_shape and len(net_param.input_dim) != 4 * len(names):
            raise NetError(f"net '{net_param.name}': input_dim needs 4 values per input "
                           f"({len(names)} inputs, {len(net_param.input_dim)} values)")
        layer = caffe_pb2.LayerParameter(name="input", type="Input")
        for i, name in enumerate(names):
            layer.top.append(name)
            shape = layer.input_param.shape.add()
            if has_shape:
                shape.CopyFrom(net_param.input_shape[i])
            else:
                shape.dim.extend(net_param.input_dim[4 * i:4 * i + 4])
        existing = list(net_param.layer)
        del net_param.layer[:]
        net_param.layer.add().CopyFrom(layer)
        for lp in existing:
            net_param.layer.add().CopyFrom(lp)
    del net_param.input[:]
    del net_param.input_shape[:]
    del net_param.input_dim[:]


def upgrade_batchnorm_params(net_param):
    """Old BatchNorm prototxts list three ``param { lr_mult: 0 }``; make them frozen specs."""
    for lp in net_param.layer:
        if lp.type == "BatchNorm" and len(lp.param) == 3:
            for spec in lp.param:
                spec.lr_mult = 0
                spec.decay_mult = 0


def upgrade_net(net_param, source="<net>"):
    """Apply every upgrade Caffe applies to a net read from a file, in Caffe's order."""
    from . import legacy
    legacy.upgrade_legacy_layers(net_param, source)
    if needs_input_upgrade(net_param):
        log.info("Attempting to upgrade input file specified using deprecated input "
                 "fields: %s", source)
        upgrade_net_input(net_param)
        log.info("Successfully upgraded file specified using deprecated input fields.")
        log.warning("Note that future Caffe releases will only support input layers and "
                    "not input fields.")
    if any(lp.type == "BatchNorm" and len(lp.param) == 3 for lp in net_param.layer):
        log.info("Attempting to upgrade batch norm layers using deprecated params: %s",
                 source)
        upgrade_batchnorm_params(net_param)
        log.info("Successfully upgraded batch norm layers using deprecated params.")
    return net_param
