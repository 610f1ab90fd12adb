"""pycaffe's ``caffe.net_spec``: write nets in Python and turn them into a NetParameter.

Usage, exactly as with pycaffe::

    from caffelite import layers as L, params as P, NetSpec
    n = NetSpec()
    n.data, n.label = L.Data(source='train_lmdb', batch_size=64, backend=P.Data.LMDB,
                             transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    print(n.to_proto())

Rules (Caffe's):

* ``L.<Type>(*bottoms, **kwargs)`` makes a layer of type ``<Type>``. A keyword ending in
  ``param`` (``param=[...]``, ``transform_param=dict(...)``, ``convolution_param=...``) is set
  on the LayerParameter itself; any other keyword goes into the layer's own parameter message
  (``XxxParameter`` for type ``Xxx``), falling back to the LayerParameter when that message
  has no such field (``loss_weight``, ``include``, ``name``, ...). Dicts become messages,
  lists become repeated fields, and a scalar given to a repeated field is wrapped in a list.
* ``ntop=k`` returns a tuple of k tops (``ntop=0`` returns the layer itself), ``in_place=True``
  makes the layer write into its bottoms.
* Names: a top is named by the NetSpec attribute it is assigned to, otherwise ``<Type><k>``
  (one counter per type, counted while emitting). A layer takes its first top's name; an
  in-place layer takes the name of its NetSpec attribute while its top keeps the bottom's
  name. ``name='...'`` overrides the layer name.
* ``P.<Type>.<VALUE>`` is an enum constant of ``<Type>Parameter``, e.g. ``P.Pooling.MAX``.
"""
import weakref
from collections import Counter, OrderedDict

import numpy as np

from .net_spec_proto import (_PARAM_NAMES, NetSpecError, _has_field, assign_proto,  # noqa: F401
                             param_name_dict)
from .proto import caffe_pb2

__all__ = ["NetSpec", "Top", "Function", "layers", "params", "to_proto", "assign_proto",
           "param_name_dict", "NetSpecError"]


class NetSpecAttributeError(NetSpecError, AttributeError):
    """An attribute read from a NetSpec that was never assigned."""


class Top:
    """One output of a layer function: the ``n``-th top of ``fn``."""

    def __init__(self, fn, n):
        self.fn = fn
        self.n = n
        self._specs = weakref.WeakSet()   # the NetSpecs this top was assigned to

    def to_proto(self):
        """A NetParameter with the layers needed to compute this top (auto names only)."""
        return to_proto(self)

    def _to_proto(self, layers, names, autonames, spec=None):
        return self.fn._to_proto(layers, names, autonames, spec)

    def __repr__(self):
        return f"<Top {self.n} of L.{self.fn.type_name}>"


class Function:
    """One layer: its type, its bottoms (Tops) and its keyword arguments."""

    def __init__(self, type_name, inputs, params):
        self.type_name = type_name
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        if not isinstance(self.ntop, (int, np.integer)) or self.ntop < 0:
            raise NetSpecError(f"L.{type_name}: ntop must be a non-negative integer, "
                               f"got {self.ntop!r}")
        for i, inp in enumerate(inputs):
            if not isinstance(inp, Top):
                hint = (" (a multi-top layer returns a tuple: unpack it or index it)"
                        if isinstance(inp, tuple) else "")
                raise NetSpecError(f"L.{type_name}: bottom {i} is a {type(inp).__name__}, "
                                   f"not a top made by another L.<Type>(...) call{hint}")
        self.inputs = tuple(inputs)
        if self.in_place and self.ntop != len(self.inputs):
            raise NetSpecError(f"L.{type_name}: in_place=True needs as many tops as bottoms "
                               f"({len(self.inputs)} bottoms, ntop={self.ntop})")
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _get_name(self, names, autonames):
        if self not in names and self.ntop > 0:
            names[self] = self._get_top_name(self.tops[0], names, autonames)
        elif self not in names:
            autonames[self.type_name] += 1
            names[self] = self.type_name + str(autonames[self.type_name])
        return names[self]

    def _get_top_name(self, top, names, autonames):
        if top not in names:
            autonames[top.fn.type_name] += 1
            names[top] = top.fn.type_name + str(autonames[top.fn.type_name])
        return names[top]

    def _update(self, params):
        self.params.update(params)

    def _check_bottom(self, i, inp, names, spec):
        """A bottom assigned only to a different NetSpec is almost surely a mistake."""
        if spec is None or inp in names:
            return
        others = [s for s in inp._specs if s is not spec]
        if others:
            other_name = next((k for k, v in others[0].tops.items() if v is inp), "?")
            raise NetSpecError(
                f"L.{self.type_name}: bottom {i} is top '{other_name}' of another NetSpec, not "
                f"of this one; assign it here first (n.{other_name} = ...) or build the layers "
                f"that produce it in this NetSpec")

    def _to_proto(self, layers, names, autonames, spec=None):
        if self in layers:
            return
        bottom_names = []
        for i, inp in enumerate(self.inputs):
            self._check_bottom(i, inp, names, spec)
            inp._to_proto(layers, names, autonames, spec)
            bottom_names.append(layers[inp.fn].top[inp.n])
        layer = caffe_pb2.LayerParameter()
        layer.type = self.type_name
        layer.bottom.extend(bottom_names)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            for top in self.tops:
                layer.top.append(self._get_top_name(top, names, autonames))
        layer.name = self._get_name(names, autonames)
        where = f"L.{self.type_name} (layer '{layer.name}')"
        prefix = _PARAM_NAMES.get(self.type_name)
        for key, value in self.params.items():
            if key.endswith("param"):
                assign_proto(layer, key, value, where)
                continue
            type_param = getattr(layer, prefix + "_param") if prefix else None
            if type_param is not None and _has_field(type_param, key):
                assign_proto(type_param, key, value, f"{where}.{prefix}_param")
            elif _has_field(layer, key):
                assign_proto(layer, key, value, where)
            else:
                if prefix:
                    owner = f"neither {type(type_param).DESCRIPTOR.name} nor LayerParameter has"
                else:
                    owner = (f"there is no {self.type_name}Parameter and LayerParameter has "
                             f"no such field either (pass the parameter message explicitly, "
                             f"e.g. convolution_param=dict(...))")
                    raise NetSpecError(f"{where}: unknown argument '{key}': {owner}")
                raise NetSpecError(f"{where}: unknown argument '{key}': {owner} such a field")
        layers[self] = layer

    def to_proto(self):
        return to_proto(self)

    def __repr__(self):
        return f"<L.{self.type_name} with {len(self.inputs)} bottoms, {self.ntop} tops>"


def to_proto(*tops):
    """A NetParameter with every layer needed for ``tops``, in dependency order (auto names)."""
    layers = OrderedDict()
    autonames = Counter()
    for top in tops:
        fn = top if isinstance(top, Function) else getattr(top, "fn", None)
        if fn is None:
            raise NetSpecError(f"to_proto: expected tops made by L.<Type>(...), got "
                               f"{type(top).__name__}")
        fn._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class NetSpec:
    """Named tops; ``to_proto()`` emits the layers that make them, named after the attributes."""

    def __init__(self):
        super().__setattr__("tops", OrderedDict())

    def __setattr__(self, name, value):
        if isinstance(value, tuple):
            raise NetSpecError(f"NetSpec.{name}: got a tuple of {len(value)} tops; a NetSpec "
                               f"attribute holds one top, so unpack multi-top layers: "
                               f"n.a, n.b = L.Slice(..., ntop=2)")
        if not isinstance(value, (Top, Function)):
            raise NetSpecError(f"NetSpec.{name}: expected a top made by L.<Type>(...), got "
                               f"{type(value).__name__}")
        if isinstance(value, Top):
            value._specs.add(self)
        self.tops[name] = value

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self.tops[name]
        except KeyError:
            defined = ", ".join(self.tops) or "none yet"
            raise NetSpecAttributeError(f"NetSpec has no top '{name}' (assigned so far: "
                                        f"{defined})") from None

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __getitem__(self, item):
        try:
            return self.tops[item]
        except KeyError:
            defined = ", ".join(self.tops) or "none yet"
            raise KeyError(f"NetSpec has no top '{item}' (assigned so far: {defined})") from None

    def __delitem__(self, name):
        del self.tops[name]

    def __contains__(self, name):
        return name in self.tops

    def keys(self):
        return list(self.tops.keys())

    def vals(self):
        return list(self.tops.values())

    def to_proto(self):
        names = {v: k for k, v in self.tops.items()}
        autonames = Counter()
        layers = OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames, self)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


class Layers:
    """``L.<Type>(*bottoms, **kwargs)``: a layer function for any type name."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def layer_fn(*args, **kwargs):
            fn = Function(name, args, kwargs)
            if fn.ntop == 0:
                return fn
            if fn.ntop == 1:
                return fn.tops[0]
            return fn.tops
        layer_fn.__name__ = name
        layer_fn.__doc__ = f"L.{name}(*bottoms, **params): a '{name}' layer."
        return layer_fn


class _EnumScope:
    def __init__(self, type_name):
        self._type_name = type_name
        self._message = getattr(caffe_pb2, type_name + "Parameter", None)
        if self._message is None:
            raise AttributeError(f"P.{type_name}: caffe_pb2 has no message "
                                 f"{type_name}Parameter")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self._message, name)
        except AttributeError:
            values = [v.name for e in self._message.DESCRIPTOR.enum_types for v in e.values]
            raise AttributeError(f"P.{self._type_name}.{name}: {self._type_name}Parameter has "
                                 f"no enum value '{name}' (values: {', '.join(values)})") from None


class Parameters:
    """``P.<Type>.<VALUE>``: enum constants of ``<Type>Parameter``, e.g. ``P.Pooling.MAX``."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _EnumScope(name)


_param_names = _PARAM_NAMES
layers = Layers()
params = Parameters()
