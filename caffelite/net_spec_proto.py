"""Setting protobuf fields from Python values the way pycaffe's net_spec does (dicts become
messages, lists repeated fields, enum names their numbers), with errors that name the
layer and argument."""
import numpy as np
from google.protobuf.message import Message

from .errors import CaffeliteError
from .proto import caffe_pb2


class NetSpecError(CaffeliteError):
    """A NetSpec that cannot become a NetParameter; the message names the layer and argument."""


def param_name_dict():
    """{layer type: prefix of its ``*_param`` field}, e.g. ``{'Convolution': 'convolution'}``.

    Found, as pycaffe does, by matching each ``xxx_param`` field of LayerParameter to the
    name of its message type ``XxxParameter``.
    """
    out = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            type_name = field.message_type.name
            if type_name.endswith("Parameter"):
                out[type_name[:-len("Parameter")]] = field.name[:-len("_param")]
    return out


_PARAM_NAMES = param_name_dict()


def _has_field(proto, name):
    return name in proto.DESCRIPTOR.fields_by_name


def _is_repeated(field):
    is_repeated = getattr(field, "is_repeated", None)     # protobuf >= 5
    if is_repeated is not None:
        return bool(is_repeated)
    return field.label == field.LABEL_REPEATED


def _scalar(field, value, where):
    """Convert one Python value for ``field``: numpy scalars, enum names given as strings."""
    if isinstance(value, np.generic):
        value = value.item()
    if field.enum_type is not None and isinstance(value, str):
        enum_value = field.enum_type.values_by_name.get(value)
        if enum_value is None:
            raise NetSpecError(f"{where}: '{value}' is not a value of enum "
                               f"{field.enum_type.name} "
                               f"({', '.join(field.enum_type.values_by_name)})")
        value = enum_value.number
    return value


def assign_proto(proto, name, val, where=None):
    """Set field ``name`` of ``proto`` from a Python value, pycaffe's way.

    Dicts fill sub-messages, lists fill repeated fields (a scalar given to a repeated field is
    wrapped in a list), protobuf messages are copied. Raises NetSpecError naming ``where``.
    """
    where = where or type(proto).DESCRIPTOR.name
    field = proto.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise NetSpecError(f"{where}: {proto.DESCRIPTOR.name} has no field '{name}'")
    here = f"{where}.{name}"
    is_message = field.message_type is not None
    try:
        if _is_repeated(field):
            values = val if isinstance(val, (list, tuple)) else [val]
            container = getattr(proto, name)
            for item in values:
                if is_message:
                    entry = container.add()
                    _fill_message(entry, item, here)
                else:
                    container.append(_scalar(field, item, here))
        elif is_message:
            _fill_message(getattr(proto, name), val, here)
        else:
            setattr(proto, name, _scalar(field, val, here))
    except (TypeError, ValueError) as e:
        raise NetSpecError(f"{here}: cannot set {val!r}: {e}") from None


def _fill_message(msg, val, where):
    if isinstance(val, Message):
        if val.DESCRIPTOR is not msg.DESCRIPTOR:
            raise NetSpecError(f"{where}: expected a {msg.DESCRIPTOR.name} (or a dict), got a "
                               f"{val.DESCRIPTOR.name}")
        msg.CopyFrom(val)
    elif isinstance(val, dict):
        for k, v in val.items():
            assign_proto(msg, k, v, where)
    else:
        raise NetSpecError(f"{where}: expected a dict for message {msg.DESCRIPTOR.name}, "
                           f"got {type(val).__name__} {val!r}")
