"""Python: a layer whose class is written in Python by the user (pycaffe's ``caffe.Layer``).

``python_param {module, layer, param_str}``: ``module`` is imported, its class ``layer`` is
called with the LayerParameter, then ``param_str`` and ``phase`` (an int) are set on the
instance before the framework calls its ``setup(bottom, top)``. Every Forward calls its
``reshape`` then ``forward``; Backward calls ``backward(top, propagate_down, bottom)``. The
class must subclass ``caffe.Layer`` (caffelite.layer.Layer). There is no default loss weight:
a Python loss layer needs an explicit ``loss_weight``. Learnable blobs are made in setup with
``self.blobs.add_blob(*shape)``.

Importing a module named by a prototxt runs its code. Python layers are allowed by default, as
in Caffe; ``allow_python_layers(False)`` or the environment variable
``CAFFELITE_NO_PYTHON_LAYERS=1`` refuses them.
"""
import importlib
import os

from ..errors import layer_error
from ..layer import Layer, register_layer

ENV_VAR = "CAFFELITE_NO_PYTHON_LAYERS"
_allowed = [True]


def allow_python_layers(allow=True):
    """Allow (default) or refuse building Python layers; returns the previous setting."""
    previous = _allowed[0]
    _allowed[0] = bool(allow)
    return previous


def _env_refuses():
    return os.environ.get(ENV_VAR, "").strip().lower() not in ("", "0", "false", "no", "off")


def python_layers_allowed():
    return _allowed[0] and not _env_refuses()


def _refusal(layer_param, module):
    how = []
    if not _allowed[0]:
        how.append("call caffelite.layer_types.python_layer.allow_python_layers(True)")
    if _env_refuses():
        how.append(f"unset the environment variable {ENV_VAR} "
                   f"(now {os.environ.get(ENV_VAR)!r})")
    return layer_error(layer_param, f"Python layers are disabled, so python_param.module "
                                    f"'{module}' was not imported; to allow them, "
                                    f"{' and '.join(how)}")


def _import(layer_param, module, cls_name):
    where = f"python_param.module '{module}' (for python_param.layer '{cls_name}')"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module != e.name and not module.startswith(e.name + "."):
            # The module exists but something it imports does not.
            raise layer_error(layer_param, f"importing {where} failed: {e}") from e
        # A module written after start-up is missed by stale finder caches: look again once.
        importlib.invalidate_caches()
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as e2:
            raise layer_error(layer_param, f"cannot import {where}: {e2} (is its folder on "
                                           f"sys.path / PYTHONPATH?)") from e2
    except Exception as e:
        raise layer_error(layer_param, f"importing {where} failed: "
                                       f"{type(e).__name__}: {e}") from e


@register_layer("Python")
class PythonLayer(Layer):
    """Factory for the ``Python`` type: instantiating it returns an instance of the user's
    class (a caffelite.layer.Layer subclass), with ``param_str`` and ``phase`` set.
    No learnable blobs of its own and no params read besides python_param."""

    def __new__(cls, layer_param):
        p = layer_param.python_param
        module, cls_name = p.module, p.layer
        if not module or not cls_name:
            raise layer_error(layer_param, f"python_param.module and python_param.layer must "
                                           f"both be set (got module '{module}', "
                                           f"layer '{cls_name}')")
        if not python_layers_allowed():
            raise _refusal(layer_param, module)
        mod = _import(layer_param, module, cls_name)
        user_cls = getattr(mod, cls_name, None)
        if user_cls is None:
            raise layer_error(layer_param, f"python_param.module '{module}' has no class "
                                           f"'{cls_name}' (python_param.layer)")
        if not (isinstance(user_cls, type) and issubclass(user_cls, Layer)):
            raise layer_error(layer_param, f"python_param.layer '{cls_name}' in module "
                                           f"'{module}' must be a class derived from "
                                           f"caffe.Layer, got {user_cls!r}")
        layer = user_cls(layer_param)
        if not hasattr(layer, "blobs"):
            raise layer_error(layer_param, f"class '{cls_name}' in module '{module}' does not "
                                           f"call caffe.Layer.__init__ from its __init__")
        # Set on the instance so that pycaffe's ``layer.type`` reads "Python".
        layer.type = "Python"
        layer.param_str = p.param_str
        layer.phase = int(layer_param.phase)
        return layer
