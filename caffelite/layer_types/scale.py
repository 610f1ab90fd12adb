"""Scale: y = x * s (+ b), with s (and b) broadcast over the axes before and after them."""
from ..backend import get_array_module
from ..fillers import constant_filler, fill
from ..layer import Layer, register_layer
from .bias import broadcast_view, param_blob_shape, sum_to_operand


@register_layer("Scale")
class ScaleLayer(Layer):
    """bottoms: x [, s]; top y = x * s [+ b] (in-place OK), broadcast as outer x dim x inner
    with outer = count(0, axis), inner = the count after the operand's axes.
    With one bottom s is blob 0, of shape x.shape[axis : axis + num_axes] (num_axes -1: to
    the end; 0: a scalar), filled by scale_param.filler (default constant 1). With two
    bottoms s = bottom[1] (a scalar s forces axis 0) and gets a gradient.
    bias_term appends blob b (last), as Caffe's internal Bias layer: shape
    x.shape[axis : axis + n] with n = num_axes (one bottom) or bottom[1]'s axis count,
    filled by scale_param.bias_filler (default constant 0).
    Backward: dx = dy * s; ds = sum(dy * x) over outer and inner (accumulated for the
    learned blob, assigned for bottom[1]); db = sum(dy) over outer and inner.
    Params: scale_param {axis, num_axes, filler, bias_term, bias_filler}."""
    min_bottom = 1
    max_bottom = 2
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.scale_param
        self.axis = p.axis
        self.bias_term = p.bias_term
        x = bottom[0]
        expected = (len(bottom) == 1) + self.bias_term
        if self.blobs:
            if len(self.blobs) != expected:
                raise self.error(f"has {len(self.blobs)} preloaded blobs, expected {expected} "
                                 f"({len(bottom)} bottom(s), bias_term {self.bias_term})")
            return
        if len(bottom) == 1:
            shape = param_blob_shape(self, x, p.axis, p.num_axes, "scale_param")
            self.blobs.append(self.make_blob(shape, x))
            # Unset, the filler makes the layer an identity rather than zeroing its input.
            fill(self.blobs[0], p.filler if p.HasField("filler") else constant_filler(1.0))
        if self.bias_term:
            num_axes = bottom[1].num_axes if len(bottom) > 1 else p.num_axes
            shape = param_blob_shape(self, x, p.axis, num_axes, "scale_param")
            self.blobs.append(self.make_blob(shape, x))
            fill(self.blobs[-1], p.bias_filler)    # FillerParameter default: constant 0

    def _scale(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        self.view = broadcast_view(self, bottom[0], self._scale(bottom), self.axis,
                                   "scale_param", "scale")
        if self.bias_term:
            self.bias_view = broadcast_view(self, bottom[0], self.blobs[-1], self.axis,
                                            "scale_param", "bias")
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = get_array_module(x)
        # In place, x is overwritten but the scale gradient needs it (kept in a buffer
        # reused across iterations).
        if top[0] is bottom[0]:
            saved = getattr(self, "x_saved", None)
            if saved is None or saved.shape != x.shape or saved.dtype != x.dtype or \
                    get_array_module(saved) is not xp:
                saved = xp.empty_like(x)
            saved[...] = x
            self.x_saved = saved
        else:
            self.x_saved = None
        s = self._scale(bottom).data.reshape(1, -1, 1)
        xp.multiply(x.reshape(self.view), s, out=top[0].data.reshape(self.view))
        if self.bias_term:
            y = top[0].data.reshape(self.bias_view)
            y += self.blobs[-1].data.reshape(1, -1, 1)

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        two = len(bottom) > 1
        if self.bias_term and self.param_needs_grad(len(self.blobs) - 1):
            self.blobs[-1].diff.reshape(-1)[...] += sum_to_operand(dy, self.bias_view)
        if (two and propagate_down[1]) or (not two and self.param_needs_grad(0)):
            x = self.x_saved if self.x_saved is not None else bottom[0].data
            ds = sum_to_operand(dy * x, self.view)
            if two:
                bottom[1].diff.reshape(-1)[...] = ds
            else:
                self.blobs[0].diff.reshape(-1)[...] += ds
        if propagate_down[0]:
            s = self._scale(bottom).data.reshape(1, -1, 1)
            bottom[0].diff.reshape(self.view)[...] = dy.reshape(self.view) * s
