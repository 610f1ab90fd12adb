"""Input: the net's input blobs, shaped by input_param (or later by the caller)."""
from ..layer import Layer, register_layer


@register_layer("Input")
class InputLayer(Layer):
    """tops: 1 or more; shape given 0 times, once (every top) or once per top.
    Params: input_param.shape."""
    exact_num_bottom = 0
    min_top = 1

    def setup(self, bottom, top):
        shapes = self.layer_param.input_param.shape
        if len(shapes) not in (0, 1, len(top)):
            raise self.error(f"input_param.shape must be given 0, 1 or {len(top)} times "
                             f"(once per top), got {len(shapes)}")
        for i, t in enumerate(top):
            if shapes:
                t.reshape([int(d) for d in shapes[0 if len(shapes) == 1 else i].dim])

    def reshape(self, bottom, top):
        pass  # the caller reshapes input blobs

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
