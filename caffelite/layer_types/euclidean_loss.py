"""EuclideanLoss: half the mean (over the batch) squared distance between two inputs."""
from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer("EuclideanLoss", v1="EUCLIDEAN_LOSS")
class EuclideanLossLayer(Layer):
    """bottoms: a, b with a.shape[0] == b.shape[0] = N and count(1) equal (the shapes may
    otherwise differ, as in Caffe). top: loss, shape ().
    loss = sum((a - b)^2) / (2 N).
    Backward: da = (a - b) * w / N, db = -(a - b) * w / N, w = top[0].diff (the loss weight).
    Both bottoms may receive a gradient, so force_backward reaches both.
    Params: none besides loss_weight."""
    exact_num_bottom = 2
    exact_num_top = 1
    auto_top_blobs = True
    is_loss = True

    def allow_force_backward(self, bottom_index):
        # Unlike the other losses there is no label here: b is as much an input as a.
        return True

    def reshape(self, bottom, top):
        a, b = bottom
        if a.num_axes == 0 or b.num_axes == 0 or a.shape[0] != b.shape[0]:
            raise self.error(f"the two inputs should have the same first dimension: bottom "
                             f"shapes {a.shape} and {b.shape}")
        if a.count_range(1) != b.count_range(1):
            raise self.error(f"inputs must have the same dimension: bottom shapes {a.shape} "
                             f"and {b.shape} hold {a.count_range(1)} and {b.count_range(1)} "
                             f"values per item")
        self.num = a.shape[0]
        top[0].reshape(())

    def forward(self, bottom, top):
        a = bottom[0].data
        xp = get_array_module(a)
        self.diff = a - bottom[1].data.reshape(a.shape)
        top[0].data[...] = xp.vdot(self.diff, self.diff) / (2 * self.num)

    def backward(self, top, propagate_down, bottom):
        scale = top[0].diff / self.num      # a 0-d array: no host sync
        for i, sign in ((0, 1), (1, -1)):
            if propagate_down[i]:
                bottom[i].diff[...] = (self.diff * (sign * scale)).reshape(bottom[i].shape)
