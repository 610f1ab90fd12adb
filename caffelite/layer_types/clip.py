"""Clip: y = min(max(x, min), max)."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("Clip")
class ClipLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed).

    dx = dy where min <= x <= max (both ends inclusive), 0 elsewhere. In place y no longer
    tells whether x sat exactly on a bound or beyond it, so the pass-mask is kept from the
    forward. Params: clip_param {min, max}, both required (proto2 `required`), min <= max."""

    def setup(self, bottom, top):
        lp = self.layer_param
        if not lp.HasField("clip_param"):
            raise self.error("clip_param is required (clip_param.min and clip_param.max)")
        p = lp.clip_param
        missing = [f"clip_param.{f}" for f in ("min", "max") if not p.HasField(f)]
        if missing:
            raise self.error(f"required field {' and '.join(missing)} not set")
        self.min, self.max = float(p.min), float(p.max)
        if not self.min <= self.max:
            raise self.error(f"clip_param.min ({self.min}) must not exceed "
                             f"clip_param.max ({self.max})")
        self._mask = None

    def _pass_mask(self, x):
        return (x >= self.min) & (x <= self.max)

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = get_array_module(x)
        self._mask = self._pass_mask(x) if top[0] is bottom[0] else None
        xp.maximum(x, self.min, out=y)
        xp.minimum(y, self.max, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        if top[0] is bottom[0]:
            if self._mask is None or self._mask.shape != dy.shape:
                raise self.error("in-place backward before forward (no saved mask for top "
                                 f"shape {tuple(dy.shape)})")
            mask = self._mask
        else:
            mask = self._pass_mask(bottom[0].data)
        bottom[0].diff[...] = dy * mask
