"""caffelite's exceptions: one base class, so callers can catch everything caffelite raises."""


class CaffeliteError(Exception):
    """Base class of every error caffelite raises on bad input."""


class PrototxtError(CaffeliteError):
    """A prototxt (or binary proto) file that does not parse; names file:line:column."""


class NetError(CaffeliteError):
    """A net that cannot be wired: unknown bottoms, duplicate tops, bad state rules."""


class UnknownLayerError(NetError, ValueError):
    """A layer name the net does not have (``forward(start=...)``, ...); also a ValueError,
    which pycaffe's ``list.index`` lookup raises there."""


class LayerError(CaffeliteError):
    """A layer that refuses its parameters or its bottom shapes; names the layer and its type."""


class WeightsError(CaffeliteError):
    """A weights file that does not fit the net; names the file and the layer."""


def layer_error(layer_param, message):
    """Build a LayerError that names the layer as Caffe's logs would."""
    return LayerError(f"layer '{layer_param.name}' (type {layer_param.type}): {message}")
