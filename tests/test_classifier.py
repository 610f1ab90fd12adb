"""caffelite.Classifier and caffelite.Detector (pycaffe's helpers), against hand-written
pipelines: resize, crops, transpose, channel swap, raw scale, mean, input scale, a linear net."""
import numpy as np
import pytest

from caffelite import io as caffe_io
from caffelite.classifier import Classifier, ClassifierError
from caffelite.detector import Detector
from caffelite.errors import CaffeliteError

NET = """name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: %(n)d dim: 3 dim: %(h)d dim: %(w)d } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.1 }
                              bias_filler { type: "gaussian" std: 1 } } }
"""


def write_net(tmp_path, n=4, h=6, w=6):
    path = tmp_path / "net.prototxt"
    path.write_text(NET % dict(n=n, h=h, w=w))
    return str(path)


def linear(net, chw_batch):
    weight, bias = (b.data for b in net.params["fc"])
    return chw_batch.reshape(len(chw_batch), -1) @ weight.T + bias


def manual_preprocess(crop_hwc, mean, raw_scale, input_scale, swap):
    x = crop_hwc.transpose(2, 0, 1)[list(swap)]
    return ((x * raw_scale) - np.asarray(mean).reshape(-1, 1, 1)) * input_scale


def test_predict_oversample_averages_ten_crops(tmp_path):
    rng = np.random.RandomState(0)
    mean, swap = np.array([10.0, 20.0, 30.0]), (2, 1, 0)
    clf = Classifier(write_net(tmp_path), None, image_dims=(8, 9), mean=mean,
                     input_scale=0.5, raw_scale=255, channel_swap=swap)
    images = [rng.rand(11, 7, 3).astype(np.float32) for _ in range(3)]   # 3 images: 30 crops
    scores = clf.predict(images)
    assert scores.shape == (3, 4)
    for i, im in enumerate(images):
        big = caffe_io.resize_image(im, (8, 9))
        corners = [(0, 0), (0, 3), (2, 0), (2, 3)]
        crops = [big[y:y + 6, x:x + 6] for y, x in corners] + [big[1:7, 1:7]]
        crops += [c[:, ::-1] for c in crops]
        batch = np.stack([manual_preprocess(c, mean, 255, 0.5, swap) for c in crops])
        np.testing.assert_allclose(scores[i], linear(clf, batch).mean(0), rtol=1e-4, atol=1e-3)


def test_predict_center_crop_only(tmp_path):
    rng = np.random.RandomState(1)
    clf = Classifier(write_net(tmp_path, n=2), None, image_dims=(10, 10))
    images = [rng.rand(10, 10, 3).astype(np.float32) for _ in range(5)]   # 5 = 2+2+1 batches
    scores = clf.predict(images, oversample=False)
    assert scores.shape == (5, 4)
    expected = linear(clf, np.stack([im[2:8, 2:8].transpose(2, 0, 1) for im in images]))
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


def test_default_image_dims_are_the_crop(tmp_path):
    clf = Classifier(write_net(tmp_path), None)
    np.testing.assert_array_equal(clf.image_dims, [6, 6])
    im = np.random.RandomState(2).rand(6, 6, 3).astype(np.float32)
    # ten crops of an image the size of the input: 5 identical crops + 5 mirrors
    expected = linear(clf, np.stack([im.transpose(2, 0, 1), im[:, ::-1].transpose(2, 0, 1)]))
    np.testing.assert_allclose(clf.predict([im])[0], expected.mean(0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("images,match", [
    ([np.zeros((8, 8))], r"image 0 has shape \(8, 8\).*H×W×K.*np.newaxis"),
    ([np.zeros((8, 8, 3)), np.zeros((2, 8, 8, 3))], r"image 1 has shape \(2, 8, 8, 3\)"),
    ([np.zeros((8, 8, 1))], "image 0 has 1 channels .* takes 3"),
    (np.zeros((8, 8, 3)), "one array of shape"),
    ([], "no images"),
])
def test_predict_rejects_bad_images(tmp_path, images, match):
    clf = Classifier(write_net(tmp_path), None)
    with pytest.raises(ClassifierError, match=match):
        clf.predict(images)


@pytest.mark.parametrize("mean,match", [
    (np.zeros((2, 8, 8)), r"mean has shape \(2, 8, 8\).*3 channels"),
    (np.zeros(4), r"mean has shape \(4,\).*shape \(3,\)"),
    (np.zeros((6, 6, 3)), "transpose"),
])
def test_bad_mean_is_named(tmp_path, mean, match):
    with pytest.raises(ClassifierError, match=match):
        Classifier(write_net(tmp_path), None, mean=mean)
    with pytest.raises(ValueError):          # also a ValueError, as pycaffe raises
        Classifier(write_net(tmp_path), None, mean=mean)


def test_an_image_mean_of_another_size_is_resized(tmp_path):
    # ImageNet's 256x256 mean for a 227x227 input, in small: pycaffe resizes it
    mean = np.random.RandomState(4).rand(3, 8, 8) * 100
    clf = Classifier(write_net(tmp_path), None, mean=mean)
    got = clf.transformer.mean[clf.inputs[0]]
    assert got.shape == (3, 6, 6)
    lo, hi = mean.min(), mean.max()
    want = caffe_io.resize_image(((mean - lo) / (hi - lo)).transpose(1, 2, 0), (6, 6))
    np.testing.assert_allclose(got, want.transpose(2, 0, 1) * (hi - lo) + lo, rtol=1e-5)


def test_bad_image_dims_and_channel_swap(tmp_path):
    with pytest.raises(ClassifierError, match="image_dims"):
        Classifier(write_net(tmp_path), None, image_dims=(4, 4))
    with pytest.raises(ClassifierError, match="channel_swap"):
        Classifier(write_net(tmp_path), None, channel_swap=(0, 1, 1))


# -- Detector ------------------------------------------------------------------------------

def make_detector(tmp_path, context_pad, **kw):
    return Detector(write_net(tmp_path, n=3, h=10, w=10), None, context_pad=context_pad, **kw)


def test_crop_without_context_is_the_window(tmp_path):
    det = make_detector(tmp_path, None)
    im = np.random.RandomState(3).rand(12, 14, 3).astype(np.float32)
    np.testing.assert_array_equal(det.crop(im, np.array([1, 2, 5, 9])), im[1:5, 2:9])
    np.testing.assert_array_equal(det.crop_dims, [10, 10, 3])


def test_context_pad_inside_image(tmp_path):
    # crop_size 10, context_pad 2: scale 10/6. Window rows/cols 2..7 (inclusive), half 3,
    # centre 5 -> grown box (0, 0, 10, 10), 11 px wide -> warped back to exactly 10 px.
    det = make_detector(tmp_path, 2)
    im = np.random.RandomState(4).rand(12, 12, 3).astype(np.float32)
    crop = det.crop(im, np.array([2, 2, 7, 7]))
    assert crop.shape == (10, 10, 3)
    np.testing.assert_allclose(crop, im[0:10, 0:10], rtol=1e-5, atol=1e-6)


def test_context_pad_fills_outside_with_mean_in_raw_space(tmp_path):
    mean_bgr = np.array([100.0, 150.0, 200.0])
    det = make_detector(tmp_path, 2, mean=mean_bgr, raw_scale=255, channel_swap=(2, 1, 0))
    np.testing.assert_allclose(det.crop_mean.reshape(-1), mean_bgr[::-1] / 255, rtol=1e-6)
    im = np.random.RandomState(5).rand(12, 12, 3).astype(np.float32)
    # window 0..4: half 2.5, centre 2.5, grown by 10/6 -> (-2, -2, 7, 7), 10 px: scale 1,
    # 2 px of padding on top and left, the image part 0..7 (7 px) warped to 8 px.
    crop = det.crop(im, np.array([0, 0, 4, 4]))
    assert crop.shape == (10, 10, 3)
    rgb_mean = mean_bgr[::-1] / 255
    np.testing.assert_allclose(crop[:2], np.broadcast_to(rgb_mean, (2, 10, 3)), rtol=1e-6)
    np.testing.assert_allclose(crop[:, :2], np.broadcast_to(rgb_mean, (10, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(crop[2:, 2:], caffe_io.resize_image(im[0:7, 0:7], (8, 8)),
                               rtol=1e-5, atol=1e-6)


def test_detect_windows(tmp_path):
    from PIL import Image
    rng = np.random.RandomState(6)
    pixels = (rng.rand(16, 20, 3) * 255).astype(np.uint8)
    path = str(tmp_path / "img.png")
    Image.fromarray(pixels).save(path)
    mean = np.array([0.4, 0.5, 0.6])
    det = make_detector(tmp_path, 2, mean=mean)
    windows = np.array([[0, 0, 8, 8], [3, 4, 15, 19], [5, 5, 9, 12], [1, 1, 14, 10]])
    dets = det.detect_windows([(path, windows), (path, windows[:1])])
    assert len(dets) == 5
    assert [d["filename"] for d in dets] == [path] * 5
    np.testing.assert_array_equal(dets[1]["window"], windows[1])
    im = caffe_io.load_image(path)
    for d in dets:
        crop = det.crop(im, d["window"])
        chw = caffe_io.resize_image(crop, (10, 10)).transpose(2, 0, 1) - mean[:, None, None]
        np.testing.assert_allclose(d["prediction"], linear(det, chw[None])[0], rtol=1e-4,
                                   atol=1e-4)


def test_detector_bad_input(tmp_path):
    det = make_detector(tmp_path, 2)
    with pytest.raises(ClassifierError, match="does not exist"):
        det.detect_windows([(str(tmp_path / "missing.png"), [[0, 0, 2, 2]])])
    from PIL import Image
    path = str(tmp_path / "img.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(ClassifierError, match="window 0 .* is empty or outside"):
        det.detect_windows([(path, [[5, 5, 2, 2]])])
    with pytest.raises(ClassifierError, match="ymin, xmin, ymax, xmax"):
        det.detect_windows([(path, [[1, 2, 3]])])
    with pytest.raises(CaffeliteError, match="selective_search_ijcv_with_python"):
        det.detect_selective_search([path])
    with pytest.raises(ClassifierError, match="context_pad"):
        make_detector(tmp_path, 5)
