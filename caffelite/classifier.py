"""pycaffe's ``caffe.Classifier``: a TEST-phase Net that classifies H×W×K images.

``predict`` resizes every image to ``image_dims``, takes the ten standard crops (four corners
and the centre, plus their mirrors; or only the centre crop), preprocesses them with the
Transformer (HWC → CHW, channel swap, raw scale, mean, input scale), runs ``forward_all`` and
returns the first output, averaged over the ten crops of each image.
"""
import numpy as np

from . import io as caffe_io
from .errors import CaffeliteError
from .net import Net, TEST


class ClassifierError(CaffeliteError, ValueError):
    """Classifier or Detector input that does not fit the net; the message says what."""


def configure_transformer(net, mean=None, input_scale=None, raw_scale=None,
                          channel_swap=None, who="Classifier"):
    """The Transformer pycaffe's Classifier and Detector set up for ``net.inputs[0]``."""
    if not net.inputs:
        raise ClassifierError(f"{who}: the net has no Input layer (net inputs are empty); "
                              f"use a deploy prototxt whose first layer is an Input")
    in_ = net.inputs[0]
    shape = tuple(net.blobs[in_].data.shape)
    if len(shape) != 4:
        raise ClassifierError(f"{who}: net input '{in_}' has shape {shape}; images need a "
                              f"4-D N×C×H×W input")
    transformer = caffe_io.Transformer({in_: shape})
    transformer.set_transpose(in_, (2, 0, 1))
    if mean is not None:
        mean = np.asarray(mean)
        channels, height, width = shape[1:]
        # an image mean of another H×W is resized to the input's by set_mean, as pycaffe
        ok = (mean.ndim == 1 and mean.shape[0] == channels) or \
             (mean.ndim == 3 and mean.shape[0] == channels) or \
             (mean.ndim == 2 and channels == 1)
        if not ok:
            hint = ""
            if mean.ndim == 3 and mean.shape[-1] == channels:
                hint = ("; the mean looks H×W×C: transpose it to C×H×W with "
                        "mean.transpose(2, 0, 1)")
            raise ClassifierError(f"{who}: mean has shape {mean.shape}, but net input '{in_}' "
                                  f"is {shape}: give a per-channel mean of shape ({channels},) "
                                  f"or a C×H×W mean with {channels} channels (any H×W; it is "
                                  f"resized to {height}×{width}){hint}")
        transformer.set_mean(in_, mean)
    if input_scale is not None:
        transformer.set_input_scale(in_, input_scale)
    if raw_scale is not None:
        transformer.set_raw_scale(in_, raw_scale)
    if channel_swap is not None:
        if sorted(int(c) for c in channel_swap) != list(range(shape[1])):
            raise ClassifierError(f"{who}: channel_swap {tuple(channel_swap)} is not a "
                                  f"permutation of the {shape[1]} channels of input '{in_}'")
        transformer.set_channel_swap(in_, channel_swap)
    return transformer


def check_images(images, channels, who):
    """Each image must be an H×W×K array with the net's K channels; returns them as arrays."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise ClassifierError(f"{who}: got one array of shape {images.shape}; pass a list of "
                              f"H×W×K images (e.g. [image]) or an N×H×W×K array")
    try:
        count = len(images)
    except TypeError:
        raise ClassifierError(f"{who}: expected a list of H×W×K images, got "
                              f"{type(images).__name__}") from None
    if count == 0:
        raise ClassifierError(f"{who}: got no images")
    out = []
    for i, im in enumerate(images):
        arr = np.asarray(im)
        if arr.ndim != 3:
            hint = (" (a grey image needs a channel axis: im[:, :, np.newaxis], or "
                    "caffe.io.load_image(path, color=False))" if arr.ndim == 2 else "")
            raise ClassifierError(f"{who}: image {i} has shape {arr.shape}; images must be "
                                  f"H×W×K arrays{hint}")
        if arr.shape[2] != channels:
            raise ClassifierError(f"{who}: image {i} has {arr.shape[2]} channels (shape "
                                  f"{arr.shape}); the net input takes {channels}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ClassifierError(f"{who}: image {i} is empty (shape {arr.shape})")
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise ClassifierError(f"{who}: image {i} has dtype {arr.dtype}; expected numbers")
        out.append(arr)
    return out


class Classifier(Net):
    """Net in TEST phase with pycaffe's image preprocessing and 10-crop prediction.

    Parameters as pycaffe: ``image_dims`` (H, W) the images are resized to before cropping
    (defaults to the net input's H×W, i.e. no cropping); ``mean`` ((C,) or C×H×W, in the
    net's channel order); ``input_scale`` (applied after the mean); ``raw_scale`` (applied
    before it, e.g. 255 for images in [0, 1]); ``channel_swap`` (e.g. (2, 1, 0) for RGB → BGR).
    """

    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None,
                 input_scale=None, raw_scale=None, channel_swap=None):
        super().__init__(model_file, TEST, weights=pretrained_file or None)
        self.transformer = configure_transformer(self, mean, input_scale, raw_scale,
                                                 channel_swap, "Classifier")
        in_ = self.inputs[0]
        self.crop_dims = np.array(self.blobs[in_].data.shape[2:])
        if image_dims is None or len(image_dims) == 0:
            image_dims = self.crop_dims
        image_dims = np.asarray(image_dims)
        if image_dims.shape != (2,) or np.any(image_dims < self.crop_dims):
            raise ClassifierError(f"Classifier: image_dims {tuple(image_dims.tolist())} must be "
                                  f"(H, W) at least as large as the net input "
                                  f"{tuple(self.crop_dims.tolist())}")
        self.image_dims = image_dims

    def predict(self, inputs, oversample=True):
        """Class scores (N, classes) for a list of H×W×K images (ten crops averaged)."""
        in_ = self.inputs[0]
        channels = self.blobs[in_].data.shape[1]
        images = check_images(inputs, channels, "Classifier.predict")
        h, w = (int(d) for d in self.image_dims)
        resized = np.zeros((len(images), h, w, channels), dtype=np.float32)
        for ix, im in enumerate(images):
            resized[ix] = caffe_io.resize_image(im, (h, w))
        if oversample:
            crops = caffe_io.oversample(resized, self.crop_dims)
        else:
            center = np.array([h, w]) / 2.0
            box = np.concatenate([center - self.crop_dims / 2.0,
                                  center + self.crop_dims / 2.0]).astype(int)
            crops = resized[:, box[0]:box[2], box[1]:box[3], :]
        caffe_in = np.zeros((len(crops), channels) + tuple(int(d) for d in self.crop_dims),
                            dtype=np.float32)
        for ix, crop in enumerate(crops):
            caffe_in[ix] = self.transformer.preprocess(in_, crop)
        out = self.forward_all(**{in_: caffe_in})
        predictions = out[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1)).mean(1)
        return predictions
