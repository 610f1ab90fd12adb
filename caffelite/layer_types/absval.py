"""AbsVal: y = |x|."""
from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer("AbsVal", v1="ABSVAL")
class AbsValLayer(Layer):
    """bottom x -> top y = |x|, same shape. dx = dy * sign(x), with sign(0) = 0.

    Caffe refuses to run this layer in place (the backward needs the sign of x, which |x|
    has lost), and so do we. No params."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        if top[0] is bottom[0]:
            raise self.error("does not allow in-place computation (top and bottom are the "
                             "same blob)")

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        get_array_module(x).abs(x, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = bottom[0].data
        xp = get_array_module(x)
        dx = bottom[0].diff
        xp.sign(x, out=dx)
        dx *= top[0].diff
