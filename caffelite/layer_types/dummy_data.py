"""DummyData: bottomless layer whose tops are filled by fillers (constant 0 by default)."""
from .. import backend
from ..errors import CaffeliteError
from ..fillers import constant_filler, fill, filler_values
from ..layer import Layer, register_layer


@register_layer("DummyData", v1="DUMMY_DATA")
class DummyDataLayer(Layer):
    """no bottoms -> tops y_0..y_{k-1}, k >= 1.

    Shapes: dummy_data_param.shape given once (all tops) or once per top, or else the legacy
    num/channels/height/width, each given once or once per top (not mixed with shape).
    Fillers: data_filler given 0 times (constant 0), once (all tops) or once per top.
    Refill rule (Caffe's): a top whose filler is "constant" is filled once at setup and
    never again; any other filler refills its top at every Forward. Reshape does nothing,
    so the shapes are fixed at setup.
    Params: dummy_data_param {shape, num, channels, height, width, data_filler}."""
    exact_num_bottom = 0
    min_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.dummy_data_param
        k = len(top)
        if len(p.data_filler) not in (0, 1, k):
            raise self.error(f"dummy_data_param.data_filler must be given 0, 1 or {k} times "
                             f"(once per top), got {len(p.data_filler)}")
        fillers = list(p.data_filler) or [constant_filler(0.0)]
        self.fillers = [fillers[i if len(fillers) > 1 else 0] for i in range(k)]
        self.refill = [f.type != "constant" for f in self.fillers]
        for t, shape in zip(top, self._shapes(p, k)):
            t.reshape(shape)
        for i, t in enumerate(top):
            self._validate_filler(i, t)
            if not self.refill[i]:
                self._fill(i, t)

    def _shapes(self, p, k):
        legacy = {name: list(getattr(p, name)) for name in ("num", "channels", "height", "width")}
        if any(legacy.values()):
            if len(p.shape):
                raise self.error("dummy_data_param: give either shape or the legacy "
                                 "num/channels/height/width, not both")
            for name, values in legacy.items():
                if len(values) not in (1, k):
                    raise self.error(f"dummy_data_param.{name} must be given once or once per "
                                     f"top ({k} tops) with the legacy fields, got {len(values)}")
            return [tuple(int(legacy[n][i if len(legacy[n]) > 1 else 0])
                          for n in ("num", "channels", "height", "width")) for i in range(k)]
        if len(p.shape) not in (1, k):
            raise self.error(f"dummy_data_param.shape must be given once or once per top "
                             f"({k} tops), got {len(p.shape)}")
        shapes = [tuple(int(d) for d in p.shape[i if len(p.shape) > 1 else 0].dim)
                  for i in range(k)]
        for s in shapes:
            if any(d < 0 for d in s):
                raise self.error(f"dummy_data_param.shape {s} has a negative dimension")
        return shapes

    def _validate_filler(self, i, t):
        """Reject a bad filler at setup without consuming random numbers."""
        if not self.refill[i]:
            return
        gen = backend.rng().bit_generator
        state = gen.state
        try:
            filler_values(self.fillers[i], t.shape)
        except CaffeliteError as e:
            raise self.error(f"dummy_data_param.data_filler for top {i}: {e}") from None
        finally:
            gen.state = state

    def _fill(self, i, t):
        try:
            fill(t, self.fillers[i])
        except CaffeliteError as e:
            raise self.error(f"dummy_data_param.data_filler for top {i}: {e}") from None

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        for i, t in enumerate(top):
            if self.refill[i]:
                self._fill(i, t)

    def backward(self, top, propagate_down, bottom):
        pass
