"""MVN: mean-variance normalisation over the 4-D (N, C, H, W) view of the bottom."""
from ..backend import get_array_module
from ..layer import Layer, register_layer


@register_layer("MVN", v1="MVN")
class MVNLayer(Layer):
    """Groups: one per (n, c) over H*W, or one per n over C*H*W with across_channels.
    Per group, with d elements: y = x - mean(x); with normalize_variance
    y /= s where s = sqrt(mean(y^2)) + eps (eps added after the sqrt, unlike BatchNorm).

    Backward follows Caffe's mvn_layer.cpp: with normalize_variance
        dx = (dy - mean(dy) - y * mean(dy * y)) / s,
    which is the exact gradient for eps = 0 (with eps > 0 Caffe drops the factor
    (s_0 + eps) / s_0 on the last term; we keep Caffe's formula); otherwise dx = dy - mean(dy).

    bottom: at most 4 axes (missing trailing axes count as 1, as Caffe's legacy accessors);
    top: always 4-D (N, C, H, W), as Caffe reshapes it. In-place allowed.
    Params: mvn_param {normalize_variance, across_channels, eps}.
    """
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.mvn_param
        self.normalize_variance = p.normalize_variance
        self.across_channels = p.across_channels
        self.eps = p.eps
        self._scale = None

    def reshape(self, bottom, top):
        b = bottom[0]
        if b.num_axes > 4:
            raise self.error(f"needs a bottom with at most 4 axes (it uses the legacy "
                             f"N, C, H, W view), got shape {b.shape}")
        shape = (b.num, b.channels, b.height, b.width)
        top[0].reshape(shape)
        self.rows = shape[0] if self.across_channels else shape[0] * shape[1]
        self.dim = b.count // self.rows if self.rows else 0

    def forward(self, bottom, top):
        if bottom[0].count == 0:
            return
        x = bottom[0].data.reshape(self.rows, self.dim)
        xp = get_array_module(x)
        y = x - x.mean(axis=1, keepdims=True)
        if self.normalize_variance:
            # The per-group divisor is kept for backward, as Caffe keeps it in variance_.
            self._scale = xp.sqrt((y * y).mean(axis=1, keepdims=True)) + self.eps
            y /= self._scale
        top[0].data.reshape(self.rows, self.dim)[...] = y

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0] or bottom[0].count == 0:
            return
        dy = top[0].diff.reshape(self.rows, self.dim)
        if self.normalize_variance:
            y = top[0].data.reshape(self.rows, self.dim)
            dx = (dy - dy.mean(axis=1, keepdims=True)
                  - y * (dy * y).mean(axis=1, keepdims=True)) / self._scale
        else:
            dx = dy - dy.mean(axis=1, keepdims=True)
        bottom[0].diff.reshape(self.rows, self.dim)[...] = dx
