"""NeuronLayer: the shared shape of element-wise layers (Caffe's NeuronLayer)."""
from ..layer import Layer


class NeuronLayer(Layer):
    """One bottom -> one top of the same shape; in-place computation allowed.

    Layers whose backward needs the input x keep a copy of it when they run in place (the
    top has overwritten it by then): ``keep_input`` in forward, ``kept_input`` in backward.
    """
    exact_num_bottom = 1
    exact_num_top = 1
    _kept = None

    def reshape(self, bottom, top):
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def keep_input(self, bottom, top):
        self._kept = bottom[0].data.copy() if top[0] is bottom[0] else None

    def kept_input(self, bottom, top):
        """x for the backward: the bottom data, or the copy taken before an in-place forward."""
        if top[0] is not bottom[0]:
            return bottom[0].data
        if self._kept is None or self._kept.shape != bottom[0].shape:
            raise self.error(f"in-place backward before forward (no saved bottom data for "
                             f"shape {tuple(bottom[0].shape)})")
        return self._kept
