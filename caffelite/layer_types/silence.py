"""Silence: swallow blobs that nothing else reads, so they are not net outputs."""
from ..layer import Layer, register_layer


@register_layer("Silence", v1="SILENCE")
class SilenceLayer(Layer):
    """bottoms: 1 or more; no tops. Forward does nothing; backward writes zeros into every
    bottom diff asked for (the bottoms feed no loss through this layer). No params."""
    min_bottom = 1
    exact_num_top = 0

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        for need, b in zip(propagate_down, bottom):
            if need:
                b.diff[...] = 0
