"""BatchNorm: per-channel normalisation to zero mean and unit variance (no learned affine)."""
from ..backend import get_array_module
from ..layer import Layer, register_layer
from ..proto import caffe_pb2


@register_layer("BatchNorm")
class BatchNormLayer(Layer):
    """bottom x (N, C, ...) -> top y, same shape (in-place OK); a 1-D bottom is one channel.
    Statistics are taken per channel (axis 1) over all other axes (m = count / C values).
    blobs: [0] running mean sum (C,), [1] running variance sum (C,), [2] scale factor (1,);
    all start at 0 and are never learned (their ParamSpecs are forced to lr_mult 0).
    Training (use_global_stats false): mu = mean(x), var = mean((x - mu)^2) (biased),
    y = (x - mu) / sqrt(var + eps); then b2 = f*b2 + 1, b0 = f*b0 + mu,
    b1 = f*b1 + m/(m-1)*var (factor 1 when m == 1), f = moving_average_fraction.
    dx = (dy - mean(dy) - mean(dy*y)*y) / sqrt(var + eps).
    Global (use_global_stats true): mu = b0/b2, var = b1/b2 (both 0 when b2 == 0);
    dx = dy / sqrt(var + eps).
    Params: batch_norm_param {use_global_stats (default: phase == TEST),
    moving_average_fraction, eps}."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.batch_norm_param
        self.use_global_stats = (p.use_global_stats if p.HasField("use_global_stats")
                                 else self.phase == caffe_pb2.TEST)
        self.fraction = p.moving_average_fraction
        self.eps = p.eps
        x = bottom[0]
        if x.num_axes == 0:
            raise self.error(f"needs a bottom with at least one axis, got shape {x.shape}")
        self.channels = 1 if x.num_axes == 1 else x.shape[1]
        expected = [self.channels, self.channels, 1]
        if self.blobs:
            counts = [b.count for b in self.blobs]
            if counts != expected:
                raise self.error(f"preloaded blobs have counts {counts}, expected {expected} "
                                 f"(mean, variance, scale factor) for {self.channels} "
                                 f"channels")
        else:
            for n in expected:
                self.blobs.append(self.make_blob((n,), x))   # zero-initialised
        # The statistics are running sums, not parameters: mask them from the solver. The
        # Net reads layer_param.param after SetUp, so adding specs here takes effect.
        params = self.layer_param.param
        for i in range(len(self.blobs)):
            if len(params) == i:
                params.add().lr_mult = 0.0
            elif params[i].lr_mult != 0:
                raise self.error(f"param {i} has lr_mult {params[i].lr_mult}: batch "
                                 f"normalisation statistics cannot be configured as learnable "
                                 f"parameters (lr_mult must be 0)")

    def reshape(self, bottom, top):
        x = bottom[0]
        channels = 1 if x.num_axes == 1 else (x.shape[1] if x.num_axes > 1 else None)
        if channels != self.channels:
            raise self.error(f"bottom shape {x.shape} has {channels} channels, the layer was "
                             f"set up for {self.channels}")
        n = x.shape[0]
        self.view = (n, self.channels, x.count // max(n * self.channels, 1))
        if top[0] is not bottom[0]:
            top[0].reshape(x.shape)

    def _stat(self, i):
        return self.blobs[i].data.reshape(-1)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.view)
        xp = get_array_module(x)
        y = top[0].data.reshape(self.view)       # may be x (in place)
        if self.use_global_stats:
            b2 = self._stat(2)
            factor = xp.where(b2 == 0, 0, 1 / xp.where(b2 == 0, 1, b2))
            mean = self._stat(0) * factor
            var = self._stat(1) * factor
            xp.subtract(x, mean[None, :, None], out=y)
        else:
            mean = x.mean(axis=(0, 2))
            xp.subtract(x, mean[None, :, None], out=y)
            var = (y * y).mean(axis=(0, 2))
            m = x.size // self.channels
            correction = m / (m - 1) if m > 1 else 1.0
            f = self.fraction
            self._stat(2)[...] = self._stat(2) * f + 1
            self._stat(0)[...] = self._stat(0) * f + mean
            self._stat(1)[...] = self._stat(1) * f + correction * var
        self.std = xp.sqrt(var + self.eps)[None, :, None]
        y /= self.std
        # Kept apart from the top: a later in-place layer may overwrite top[0].data.
        if self.use_global_stats:
            self.x_norm = None
        else:
            if getattr(self, "x_norm", None) is None or self.x_norm.shape != y.shape or \
                    self.x_norm.dtype != y.dtype or get_array_module(self.x_norm) is not xp:
                self.x_norm = xp.empty_like(y)
            self.x_norm[...] = y

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.view)
        dx = bottom[0].diff.reshape(self.view)
        if self.use_global_stats:
            dx[...] = dy / self.std
            return
        y = self.x_norm
        mean_dy = dy.mean(axis=(0, 2), keepdims=True)
        mean_dyy = (dy * y).mean(axis=(0, 2), keepdims=True)
        dx[...] = (dy - mean_dy - mean_dyy * y) / self.std
