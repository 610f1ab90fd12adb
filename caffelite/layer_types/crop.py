"""Crop: cut a window of bottom[0] (A) to the size of bottom[1] (the reference).

bottoms: A (d_0..d_{n-1}) and ref (at least n axes) -> top with the shape of A on the axes
before ``axis`` and ref's sizes on the axes from ``axis`` on:
    top[i_0..i_{n-1}] = A[i_0 + o_0, ..., i_{n-1} + o_{n-1}]
with o_j = 0 before ``axis``; from ``axis`` on o_j is 0 (no offset given), the single offset
(one given), or the j-th offset (one per cropped axis). Every window must fit: o_j + ref_j <= d_j.
Backward zero-fills A's diff and copies the top diff into the window. ref only supplies a shape:
it gets no gradient (its diff is never written) and force_backward does not ask for one.
Params: crop_param {axis (default 2, negative counts from the end), offset (repeated)}.
"""
from ..layer import Layer, register_layer


@register_layer("Crop", v1=None)
class CropLayer(Layer):
    exact_num_bottom = 2
    exact_num_top = 1

    def setup(self, bottom, top):
        p = self.layer_param.crop_param
        self.offsets_param = [int(o) for o in p.offset]
        n = bottom[0].num_axes
        if not -n <= p.axis < n:
            raise self.error(f"crop_param.axis {p.axis} out of range for bottom[0] shape "
                             f"{bottom[0].shape}")
        self.axis = p.axis % n
        if len(self.offsets_param) > 1 and len(self.offsets_param) != n - self.axis:
            raise self.error(f"crop_param.offset is given {len(self.offsets_param)} times: give "
                             f"it once, or once per cropped axis ({n - self.axis} axes from "
                             f"axis {self.axis} of bottom[0] shape {bottom[0].shape})")

    def reshape(self, bottom, top):
        if top[0] is bottom[0]:
            raise self.error("does not allow in-place computation")
        shape, ref = tuple(bottom[0].shape), tuple(bottom[1].shape)
        n = len(shape)
        if n <= self.axis or (len(self.offsets_param) > 1
                              and len(self.offsets_param) != n - self.axis):
            raise self.error(f"bottom[0] shape {shape} no longer fits crop_param (axis "
                             f"{self.axis}, {len(self.offsets_param)} offsets)")
        if len(ref) < n:
            raise self.error(f"the reference bottom[1] shape {ref} has fewer axes than "
                             f"bottom[0] shape {shape}")
        offsets, new_shape = [], []
        for j in range(n):
            if j < self.axis:
                offsets.append(0)
                new_shape.append(shape[j])
                continue
            if not self.offsets_param:
                o = 0
            elif len(self.offsets_param) == 1:
                o = self.offsets_param[0]
            else:
                o = self.offsets_param[j - self.axis]
            if o + ref[j] > shape[j]:
                raise self.error(f"the crop for axis {j} is out of bounds: offset {o} + "
                                 f"reference size {ref[j]} > bottom[0] size {shape[j]} "
                                 f"(bottom[0] shape {shape}, bottom[1] shape {ref})")
            offsets.append(o)
            new_shape.append(ref[j])
        self.window = tuple(slice(o, o + s) for o, s in zip(offsets, new_shape))
        top[0].reshape(tuple(new_shape))

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data[self.window]

    def backward(self, top, propagate_down, bottom):
        # As Caffe: nothing is written to the reference's diff, even when asked.
        if propagate_down[0]:
            bottom[0].diff[...] = 0
            bottom[0].diff[self.window] = top[0].diff

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1
