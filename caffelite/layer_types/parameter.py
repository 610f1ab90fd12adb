"""Parameter: a free learnable blob exposed as a top."""
from ..layer import Layer, register_layer


@register_layer("Parameter")
class ParameterLayer(Layer):
    """no bottoms; top: parameter_param.shape.
    blobs: one of parameter_param.shape, zero-initialised (Caffe fills nothing).
    The top shares the blob's data and diff, so whatever the consumers write into the
    top's diff is the blob's gradient: backward has nothing to do.
    Params: parameter_param.shape.
    """
    exact_num_bottom = 0
    exact_num_top = 1

    def setup(self, bottom, top):
        self.shape = tuple(int(d) for d in self.layer_param.parameter_param.shape.dim)
        if any(d < 0 for d in self.shape):
            raise self.error(f"parameter_param.shape {self.shape} has a negative dimension")
        if self.blobs:
            if len(self.blobs) != 1:
                raise self.error(f"has {len(self.blobs)} preloaded blobs, expected 1")
            return
        self.blobs.append(self.make_blob(self.shape, top[0]))   # Blob() starts at zero

    def reshape(self, bottom, top):
        blob = self.blobs[0]
        top[0].reshape(self.shape)
        if blob.count != top[0].count:
            raise self.error(f"blob of shape {blob.shape} does not fit "
                             f"parameter_param.shape {self.shape}")
        # Re-shared on every reshape: the blob may have been replaced or moved to another
        # device since the last forward.
        top[0].share_data(blob)
        top[0].share_diff(blob)

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
