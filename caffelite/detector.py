"""pycaffe's ``caffe.Detector``: R-CNN style classification of windows in images.

Each window (ymin, xmin, ymax, xmax) is cropped from its image, optionally with context
padding (the window is grown so that, once warped to the net input, ``context_pad`` pixels of
surrounding image frame it; parts that fall outside the image are filled with the mean),
warped to the net input size by the Transformer, and classified with ``forward_all``.
"""
import os

import numpy as np

from . import io as caffe_io
from .classifier import ClassifierError, configure_transformer
from .errors import CaffeliteError
from .net import Net, TEST


class Detector(Net):
    """Net in TEST phase that classifies image windows (pycaffe's Detector)."""

    def __init__(self, model_file, pretrained_file, mean=None, input_scale=None,
                 raw_scale=None, channel_swap=None, context_pad=None):
        super().__init__(model_file, TEST, weights=pretrained_file or None)
        self.transformer = configure_transformer(self, mean, input_scale, raw_scale,
                                                 channel_swap, "Detector")
        self.configure_crop(context_pad)

    def detect_windows(self, images_windows):
        """[(image filename, windows), ...] → [{'window', 'prediction', 'filename'}, ...].

        ``windows`` is an array (or list) of (ymin, xmin, ymax, xmax) rows in pixels.
        """
        images_windows = [(fname, windows) for fname, windows in images_windows]
        window_inputs = []
        for image_fname, windows in images_windows:
            if not os.path.exists(image_fname):
                raise ClassifierError(f"Detector.detect_windows: image {image_fname!r} does "
                                      f"not exist")
            image = caffe_io.load_image(image_fname).astype(np.float32)
            for k, window in enumerate(windows):
                window = self._check_window(window, image.shape, f"{image_fname} window {k}")
                window_inputs.append(self.crop(image, window))
        if not window_inputs:
            return []
        in_ = self.inputs[0]
        caffe_in = np.zeros((len(window_inputs), window_inputs[0].shape[2])
                            + tuple(self.blobs[in_].data.shape[2:]), dtype=np.float32)
        for ix, window_in in enumerate(window_inputs):
            caffe_in[ix] = self.transformer.preprocess(in_, window_in)
        out = self.forward_all(**{in_: caffe_in})
        predictions = out[self.outputs[0]]
        detections = []
        ix = 0
        for image_fname, windows in images_windows:
            for window in windows:
                detections.append({"window": window, "prediction": predictions[ix],
                                   "filename": image_fname})
                ix += 1
        return detections

    def detect_selective_search(self, image_fnames):
        """Selective-search proposals need R-CNN's MATLAB package, as in pycaffe."""
        try:
            import selective_search_ijcv_with_python as selective_search
        except ImportError:
            raise CaffeliteError(
                "Detector.detect_selective_search needs the external "
                "'selective_search_ijcv_with_python' package (MATLAB-based, from R-CNN), "
                "which is not installed; compute windows yourself and call "
                "detect_windows([(filename, windows), ...])") from None
        image_fnames = [os.path.abspath(f) for f in image_fnames]
        windows_list = selective_search.get_windows(image_fnames, cmd="selective_search_rcnn")
        return self.detect_windows(zip(image_fnames, windows_list))

    @staticmethod
    def _check_window(window, image_shape, where):
        arr = np.asarray(window)
        if arr.shape != (4,) or not np.issubdtype(arr.dtype, np.number):
            raise ClassifierError(f"Detector: {where} is {window!r}; a window is "
                                  f"(ymin, xmin, ymax, xmax)")
        arr = arr.astype(int)
        ymin, xmin, ymax, xmax = arr
        h, w = image_shape[:2]
        if not (0 <= ymin < min(ymax, h) and 0 <= xmin < min(xmax, w)):
            raise ClassifierError(f"Detector: {where} {tuple(arr.tolist())} is empty or "
                                  f"outside the {h}×{w} image (need 0 <= ymin < ymax, "
                                  f"0 <= xmin < xmax, ymin < {h} and xmin < {w})")
        return arr

    def crop(self, im, window):
        """The window's pixels, or with context padding the warped, mean-framed context crop.

        Without context padding this is ``im[ymin:ymax, xmin:xmax]``. With it, the window
        (taken as inclusive of ymax and xmax, as R-CNN does) is scaled about its centre by
        crop_size / (crop_size − 2·context_pad), clipped to the image, resized to the part of
        the crop_size × crop_size input it covers, and placed on a canvas of ``crop_mean``.
        """
        window = np.asarray(window).astype(int)
        crop = im[window[0]:window[2], window[1]:window[3]]
        if not self.context_pad:
            return crop
        box = window.astype(np.float64)
        crop_size = self.blobs[self.inputs[0]].width   # assumes a square input
        scale = crop_size / (1.0 * crop_size - self.context_pad * 2)
        half_h = (box[2] - box[0] + 1) / 2.0
        half_w = (box[3] - box[1] + 1) / 2.0
        center = (box[0] + half_h, box[1] + half_w)
        scaled_dims = scale * np.array((-half_h, -half_w, half_h, half_w))
        box = np.round(np.tile(center, 2) + scaled_dims)
        full_h = box[2] - box[0] + 1
        full_w = box[3] - box[1] + 1
        scale_h = crop_size / full_h
        scale_w = crop_size / full_w
        pad_y = int(round(max(0, -box[0]) * scale_h))   # how much falls outside the image
        pad_x = int(round(max(0, -box[1]) * scale_w))
        im_h, im_w = im.shape[:2]
        box = np.clip(box, 0.0, [im_h, im_w, im_h, im_w])
        clip_h = box[2] - box[0] + 1
        clip_w = box[3] - box[1] + 1
        if not (clip_h > 0 and clip_w > 0):
            raise ClassifierError(f"Detector.crop: window {tuple(window.tolist())} leaves "
                                  f"nothing of the {im_h}×{im_w} image")
        crop_h = int(round(clip_h * scale_h))
        crop_w = int(round(clip_w * scale_w))
        if pad_y + crop_h > crop_size:
            crop_h = crop_size - pad_y
        if pad_x + crop_w > crop_size:
            crop_w = crop_size - pad_x
        box = box.astype(int)
        context_crop = im[box[0]:box[2], box[1]:box[3]]
        if context_crop.size == 0:
            raise ClassifierError(f"Detector.crop: window {tuple(window.tolist())} with "
                                  f"context leaves nothing of the {im_h}×{im_w} image")
        context_crop = caffe_io.resize_image(context_crop, (crop_h, crop_w))
        crop = np.ones(self.crop_dims, dtype=np.float32) * self.crop_mean
        crop[pad_y:pad_y + crop_h, pad_x:pad_x + crop_w] = context_crop
        return crop

    def configure_crop(self, context_pad):
        """Set ``crop_dims`` (H, W, C of the input) and, with context padding, ``crop_mean``:
        the mean taken back to raw image space (un-transposed, un-swapped, ÷ raw_scale)."""
        in_ = self.inputs[0]
        tpose = self.transformer.transpose[in_]
        inv_tpose = [tpose[t] for t in tpose]   # pycaffe's expression; right for (2, 0, 1)
        self.crop_dims = np.array(self.blobs[in_].data.shape[1:])[inv_tpose]
        self.context_pad = context_pad
        if self.context_pad:
            crop_size = self.blobs[in_].data.shape[3]
            if self.blobs[in_].data.shape[2] != crop_size:
                raise ClassifierError(f"Detector: context padding needs a square net input, "
                                      f"got {tuple(self.blobs[in_].data.shape)}")
            if not 0 <= 2 * context_pad < crop_size:
                raise ClassifierError(f"Detector: context_pad {context_pad} must be below half "
                                      f"the input size {crop_size}")
            channel_order = self.transformer.channel_swap.get(in_)
            raw_scale = self.transformer.raw_scale.get(in_)
            mean = self.transformer.mean.get(in_)
            if mean is not None:
                crop_mean = np.array(mean, dtype=np.float32).transpose(inv_tpose)
                if channel_order is not None:
                    channel_order = list(channel_order)
                    inverse = [channel_order.index(i) for i in range(crop_mean.shape[2])]
                    crop_mean = crop_mean[:, :, inverse]
                if raw_scale is not None:
                    crop_mean /= raw_scale
                self.crop_mean = crop_mean
            else:
                self.crop_mean = np.zeros(self.crop_dims, dtype=np.float32)
