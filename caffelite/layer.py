"""The Layer base class and the self-registering layer registry.

A layer type subclasses ``Layer`` and decorates itself with ``@register_layer("Type")``.
The base class runs Caffe's template: ``SetUp`` checks blob counts, calls ``setup`` then
``reshape`` and installs the loss weights; ``Forward`` calls ``reshape`` then ``forward``;
``Backward`` calls ``backward``. Subclasses implement the lower-case methods only.
"""

from .blob import Blob
from .errors import CaffeliteError, layer_error

_REGISTRY = {}
_V1_NAMES = {}


def register_layer(type_name, v1=None):
    """Class decorator: make ``type_name`` buildable from a prototxt."""
    def decorate(cls):
        if type_name in _REGISTRY and _REGISTRY[type_name] is not cls:
            raise CaffeliteError(f"layer type '{type_name}' registered twice")
        cls.type = type_name
        _REGISTRY[type_name] = cls
        if v1:
            _V1_NAMES[v1] = type_name
        return cls
    return decorate


def layer_type_list():
    _load_builtin_types()
    return sorted(_REGISTRY)


def _load_builtin_types():
    from . import layer_types  # noqa: F401  (importing registers every built-in type)


def create_layer(layer_param):
    """Instantiate the registered class for ``layer_param.type``."""
    _load_builtin_types()
    cls = _REGISTRY.get(layer_param.type)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise layer_error(layer_param, f"unknown layer type '{layer_param.type}' "
                                       f"(known types: {known})")
    return cls(layer_param)


class BlobVec(list):
    """A layer's learnable blobs; ``add_blob`` is pycaffe's way to create one."""

    def add_blob(self, *shape):
        self.append(Blob(shape))
        return self[-1]


class Layer:
    type = None
    # Blob-count constraints, checked in SetUp (None = unconstrained), as Caffe's
    # ExactNumBottomBlobs / MinBottomBlobs / ... virtuals.
    exact_num_bottom = None
    min_bottom = None
    max_bottom = None
    exact_num_top = None
    min_top = None
    max_top = None
    equal_num_bottom_top = False
    auto_top_blobs = False
    # Loss layers weight top 0 by 1 unless the prototxt says otherwise.
    is_loss = False
    # False once a Net has found that it never runs this layer's backward: a layer may then
    # skip forward work that only its backward needs (MAX pooling's argmax).
    backward_expected = True

    def __init__(self, layer_param):
        self.layer_param = layer_param
        self.name = layer_param.name
        self.phase = layer_param.phase
        self.blobs = BlobVec()
        self.param_propagate_down = []
        self.loss_weights = []
        self._blobs_from_param()

    def _blobs_from_param(self):
        """Blobs embedded in the LayerParameter (as in a caffemodel) replace fillers."""
        if not self.layer_param.blobs:
            return
        from .formats.blobproto import blobproto_to_array
        for bp in self.layer_param.blobs:
            arr = blobproto_to_array(bp)
            blob = Blob(arr.shape)
            blob.data = arr
            self.blobs.append(blob)

    # -- helpers for subclasses -----------------------------------------------------------
    def error(self, message):
        return layer_error(self.layer_param, message)

    def make_blob(self, shape, like):
        """A learnable blob allocated like ``like`` (a bottom Blob): same dtype and xp."""
        return Blob(shape, dtype=like.dtype, xp=like.xp)

    def param_needs_grad(self, i):
        return i < len(self.param_propagate_down) and self.param_propagate_down[i]

    # -- template -----------------------------------------------------------------------
    def SetUp(self, bottom, top):
        self.check_blob_counts(bottom, top)
        self.setup(bottom, top)
        self.reshape(bottom, top)
        self.set_loss_weights(top)
        while len(self.param_propagate_down) < len(self.blobs):
            self.param_propagate_down.append(True)

    def check_blob_counts(self, bottom, top):
        def check(what, n, exact, lo, hi):
            if exact is not None and n != exact:
                raise self.error(f"takes {exact} {what} blob(s), got {n}")
            if lo is not None and n < lo:
                raise self.error(f"takes at least {lo} {what} blob(s), got {n}")
            if hi is not None and n > hi:
                raise self.error(f"takes at most {hi} {what} blob(s), got {n}")
        check("bottom", len(bottom), self.exact_num_bottom, self.min_bottom, self.max_bottom)
        check("top", len(top), self.exact_num_top, self.min_top, self.max_top)
        if self.equal_num_bottom_top and len(bottom) != len(top):
            raise self.error(f"needs as many tops as bottoms, got {len(bottom)} bottoms "
                             f"and {len(top)} tops")

    def default_loss_weights(self, num_top):
        if self.is_loss:
            return [1.0] + [0.0] * (num_top - 1)
        return []

    def set_loss_weights(self, top):
        weights = list(self.layer_param.loss_weight) or self.default_loss_weights(len(top))
        if weights and len(weights) != len(top):
            raise self.error(f"loss_weight must be unspecified or given once per top "
                             f"({len(top)} tops, {len(weights)} weights)")
        self.loss_weights = [float(w) for w in weights] or [0.0] * len(top)
        for w, t in zip(self.loss_weights, top):
            if w:
                t.diff[...] = w

    def loss(self, top_index):
        return self.loss_weights[top_index] if top_index < len(self.loss_weights) else 0.0

    def Forward(self, bottom, top):
        self.reshape(bottom, top)
        self.forward(bottom, top)
        loss = 0.0
        for w, t in zip(self.loss_weights, top):
            if w:
                t.diff[...] = w
                loss += w * t.data.sum()
        return loss

    def Backward(self, top, propagate_down, bottom):
        self.backward(top, propagate_down, bottom)

    def allow_force_backward(self, bottom_index):
        """Loss layers never send a gradient to their label bottom (index 1)."""
        return not (self.is_loss and bottom_index == 1)

    # -- to implement -----------------------------------------------------------------------
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        raise NotImplementedError

    def forward(self, bottom, top):
        raise NotImplementedError

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise self.error("has no backward")
