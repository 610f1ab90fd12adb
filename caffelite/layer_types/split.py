"""Split: one bottom shared by several tops; backward sums the top diffs."""
from ..layer import Layer, register_layer


@register_layer("Split", v1="SPLIT")
class SplitLayer(Layer):
    """bottom: x; tops: k copies sharing x's data. dx = sum_k dtop_k."""
    exact_num_bottom = 1
    min_top = 1

    def reshape(self, bottom, top):
        for t in top:
            if t is bottom[0]:
                raise self.error("does not allow in-place computation")
            if t.shape == bottom[0].shape and t.shares_memory_with(bottom[0]):
                continue                      # as set up by the last forward
            t.reshape(bottom[0].shape)
            t.share_data(bottom[0])

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        diff = bottom[0].diff
        diff[...] = top[0].diff
        for t in top[1:]:
            diff += t.diff
