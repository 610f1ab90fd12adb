"""Threshold: y = 1 if x > threshold else 0."""
from ..backend import get_array_module
from ..layer import register_layer
from .neuron import NeuronLayer


@register_layer("Threshold", v1="THRESHOLD")
class ThresholdLayer(NeuronLayer):
    """bottom x -> top y, same shape (in place allowed), y in {0, 1}.

    A step function has no useful gradient and Caffe gives it no backward: asking for a
    gradient to the bottom is an error. Params: threshold_param.threshold."""

    def setup(self, bottom, top):
        self.threshold = float(self.layer_param.threshold_param.threshold)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        top[0].data[...] = xp.greater(x, self.threshold)

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise self.error("has no backward (a step function); do not request a gradient "
                             "through it (propagate_down / force_backward)")
