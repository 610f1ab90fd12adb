"""caffe.io: BlobProto/Datum conversions, image loading, resizing, oversampling, Transformer."""
import numpy as np
import pytest
from PIL import Image

from caffelite import io
from caffelite.proto import caffe_pb2


def test_blobproto_round_trip_and_legacy_dims(fixtures_dir):
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    bp = io.array_to_blobproto(a, diff=2 * a)
    np.testing.assert_array_equal(io.blobproto_to_array(bp), a)
    np.testing.assert_array_equal(io.blobproto_to_array(bp, return_diff=True), 2 * a)
    arrays = io.blobprotovector_str_to_arraylist(io.arraylist_to_blobprotovector_str([a, a[0]]))
    assert [x.shape for x in arrays] == [(2, 3, 4), (3, 4)]
    mean_case = fixtures_dir / "formats" / "mean_binaryproto"
    expected = np.load(mean_case / "data.npz")["mean"]
    mean = io.load_mean_file(str(mean_case / "mean.binaryproto"))
    assert mean.shape == expected.shape == (1, 3, 10, 12)
    np.testing.assert_allclose(mean, expected, rtol=1e-6)


def test_mean_file_write_uses_legacy_dims(tmp_path):
    m = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    io.save_mean_file(m, str(tmp_path / "m.binaryproto"))
    bp = caffe_pb2.BlobProto()
    bp.ParseFromString((tmp_path / "m.binaryproto").read_bytes())
    assert (bp.num, bp.channels, bp.height, bp.width) == (1, 2, 3, 4)
    np.testing.assert_array_equal(io.load_mean_file(str(tmp_path / "m.binaryproto"))[0], m)


def test_datum_round_trip():
    u = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    d = io.array_to_datum(u, label=5)
    assert d.label == 5 and d.data == u.tobytes() and not d.float_data
    np.testing.assert_array_equal(io.datum_to_array(d), u)
    f = u.astype(np.float32) / 7
    np.testing.assert_allclose(io.datum_to_array(io.array_to_datum(f)), f, rtol=1e-6)
    with pytest.raises(ValueError):
        io.array_to_datum(np.zeros((2, 2)))


def test_load_image_color_and_gray(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    img = io.load_image(str(tmp_path / "a.png"))
    assert img.dtype == np.float32 and img.shape == (5, 7, 3)
    np.testing.assert_allclose(img, rgb / 255.0, rtol=1e-6)
    gray = io.load_image(str(tmp_path / "a.png"), color=False)
    np.testing.assert_allclose(gray[:, :, 0], rgb / 255.0 @ [0.2125, 0.7154, 0.0721], rtol=1e-5)
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.png")
    assert io.load_image(str(tmp_path / "g.png")).shape == (5, 7, 3)


def test_resize_image_bilinear_and_constant():
    im = np.random.default_rng(2).random((4, 6, 3)).astype(np.float32)
    same = io.resize_image(im, (4, 6))
    np.testing.assert_allclose(same, im, rtol=1e-6, atol=1e-7)
    down = io.resize_image(im, (2, 3))
    # halving with centre alignment averages each 2×2 block
    blocks = im.reshape(2, 2, 3, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(down, blocks, rtol=1e-5, atol=1e-6)
    const = io.resize_image(np.full((3, 3, 1), 0.25), (5, 4))
    assert const.shape == (5, 4, 1) and np.all(const == 0.25)


def test_oversample_ten_crops():
    im = np.arange(6 * 8 * 1, dtype=np.float32).reshape(6, 8, 1)
    crops = io.oversample([im], (4, 4))
    assert crops.shape == (10, 4, 4, 1)
    np.testing.assert_array_equal(crops[0], im[:4, :4])
    np.testing.assert_array_equal(crops[3], im[2:, 4:])
    np.testing.assert_array_equal(crops[4], im[1:5, 2:6])
    np.testing.assert_array_equal(crops[5], im[:4, :4][:, ::-1])


def test_transformer_preprocess_and_deprocess():
    t = io.Transformer({"data": (1, 3, 4, 5)})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255)
    t.set_mean("data", np.array([10.0, 20.0, 30.0]))
    t.set_input_scale("data", 0.5)
    img = np.random.default_rng(3).random((4, 5, 3)).astype(np.float32)
    out = t.preprocess("data", img)
    expected = (img.transpose(2, 0, 1)[[2, 1, 0]] * 255 - np.array([10, 20, 30])[:, None, None]) * 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    np.testing.assert_allclose(t.deprocess("data", out), img, rtol=1e-5, atol=1e-6)
    assert t.preprocess("data", np.random.random((8, 10, 3))).shape == (3, 4, 5)
    with pytest.raises(ValueError):
        t.set_mean("data", np.zeros(4))
    with pytest.raises(ValueError, match="2 channels"):
        t.set_mean("data", np.zeros((2, 4, 5)))
    t.set_mean("data", np.full((3, 9, 7), 7.0))        # another H×W: resized (a constant stays)
    np.testing.assert_array_equal(t.mean["data"], np.full((3, 4, 5), 7.0))
    with pytest.raises(ValueError):
        t.set_transpose("data", (1, 0))
    with pytest.raises(KeyError):
        t.preprocess("nope", img)


def test_resize_image_of_other_channel_counts_zooms_like_scipy():
    # pycaffe hands 1- and 3-channel images to skimage, others to scipy.ndimage.zoom:
    # corners on corners, no stretching to [0, 1]
    im = np.arange(2 * 2 * 5, dtype=np.float64).reshape(2, 2, 5) * 10
    out = io.resize_image(im, (3, 3))
    assert out.dtype == np.float32 and out.shape == (3, 3, 5)
    np.testing.assert_allclose(out[::2, ::2], im)
    np.testing.assert_allclose(out[1, 1], im.mean(axis=(0, 1)))


def test_resize_image_agrees_with_scipy_zoom():
    ndimage = pytest.importorskip("scipy.ndimage")
    rnd = np.random.default_rng(8).random((10, 10, 5))
    for order in (0, 1):
        np.testing.assert_allclose(io.resize_image(rnd, (20, 30), order),
                                   ndimage.zoom(rnd, (2, 3, 1), order=order), atol=1e-6)
