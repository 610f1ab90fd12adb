"""WindowData (R-CNN): window file parsing, fg/bg sampling and labels, warp and square
crops with context padding (worked out by hand below), mirror, mean, scale, errors."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.data.image import resize_linear
from caffelite.errors import LayerError
from caffelite.io import save_mean_file
from caffelite.layer_types.window_data import window_geometry
from caffelite.proto import caffe_pb2
from caffelite.testing.data_fixtures import encode_image


def window_net(source, params="", transform="crop_size: 10", phase=caffe.TRAIN):
    text = (f'layer {{ name: "win" type: "WindowData" top: "data" top: "label" '
            f'transform_param {{ {transform} }} '
            f'window_data_param {{ source: "{source}" {params} }} }}')
    return caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), phase)


@pytest.fixture
def image(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    (tmp_path / "img.png").write_bytes(encode_image(img, "PNG"))
    return tmp_path, img


def window_file(root, windows, name="windows.txt", channels=3):
    lines = ["# 0", str(root / "img.png"), str(channels), "20", "20", str(len(windows))]
    lines += [" ".join(str(v) for v in w) for w in windows]
    (root / name).write_text("\n".join(lines) + "\n")
    return root / name


def chw(a):
    return a.transpose(2, 0, 1).astype(np.float32)


def test_warp_samples_bg_then_fg_with_labels_mean_and_scale(image):
    root, img = image
    src = window_file(root, [(3, 0.9, 2, 3, 11, 17), (5, 0.1, 0, 0, 7, 5), (4, 0.4, 1, 1, 2, 2)])
    # overlap 0.4 is neither fg (>= 0.5) nor bg (< 0.3): never sampled
    net = window_net(src, "batch_size: 4 fg_fraction: 0.5 scale: 0.5 bg_threshold: 0.3",
                     "crop_size: 10 mean_value: 10 mean_value: 20 mean_value: 30")
    assert net.blobs["data"].shape == (4, 3, 10, 10) and net.blobs["label"].shape == (4,)
    net.forward()
    mean = np.array([10, 20, 30], np.float32).reshape(3, 1, 1)
    bg = (chw(resize_linear(img[0:6, 0:8], 10, 10)) - mean) * np.float32(0.5)
    fg = (chw(resize_linear(img[3:18, 2:12], 10, 10)) - mean) * np.float32(0.5)
    np.testing.assert_array_equal(net.blobs["label"].data, [0, 0, 3, 3])
    for i, expected in enumerate([bg, bg, fg, fg]):
        np.testing.assert_array_equal(net.blobs["data"].data[i], expected)


def test_context_pad_inside_the_image(image):
    root, img = image
    # window 5..14 (10 px), crop 10, pad 1: scale 10/8, centre 10, box round(3.75)..round(16.25)
    src = window_file(root, [(1, 1.0, 5, 5, 14, 14)])
    net = window_net(src, "batch_size: 2 fg_fraction: 1 context_pad: 1")
    net.forward()
    expected = chw(resize_linear(img[4:17, 4:17], 10, 10))
    for item in net.blobs["data"].data:
        np.testing.assert_array_equal(item, expected)


def test_context_pad_clipped_at_the_border_and_mirrored(image):
    root, img = image
    # window 0..9, pad 1: box -1..11 (13 px) clipped to 0..11; warped to round(12*10/13) = 9
    # pixels placed after round(1*10/13) = 1 pixel of zero padding (left, or right mirrored)
    src = window_file(root, [(2, 0.8, 0, 0, 9, 9)])
    caffe.set_random_seed(3)
    net = window_net(src, "batch_size: 8 fg_fraction: 1 context_pad: 1",
                     "crop_size: 10 mirror: true mean_value: 5")
    net.forward()
    patch = chw(resize_linear(img[0:12, 0:12], 9, 9)) - 5
    plain = np.zeros((3, 10, 10), np.float32)
    plain[:, 1:10, 1:10] = patch
    flipped = np.zeros((3, 10, 10), np.float32)
    flipped[:, 1:10, 0:9] = patch[:, :, ::-1]
    kinds = []
    for item in net.blobs["data"].data:
        kinds.append("plain" if np.array_equal(item, plain) else
                     "flipped" if np.array_equal(item, flipped) else "neither")
    assert "neither" not in kinds and len(set(kinds)) == 2


def test_square_mode(image):
    root, img = image
    # a 10 x 4 window made square: 11 x 11 box 5..15 around centre (10, 10)
    src = window_file(root, [(1, 0.9, 5, 8, 14, 11)])
    net = window_net(src, 'batch_size: 1 fg_fraction: 1 crop_mode: "square"')
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data[0],
                                  chw(resize_linear(img[5:16, 5:16], 10, 10)))


def test_geometry_matches_hand_numbers():
    assert window_geometry(0, 0, 9, 9, 20, 20, 10, 1, False, False) == \
        ((0, 0, 11, 11), (9, 9), 1, 1)
    assert window_geometry(0, 0, 9, 9, 20, 20, 10, 1, False, True) == \
        ((0, 0, 11, 11), (9, 9), 1, 0)
    assert window_geometry(2, 3, 11, 17, 20, 20, 10, 0, False, False) == \
        ((2, 3, 11, 17), (10, 10), 0, 0)


def test_mean_file_is_centre_cropped(image, tmp_path):
    root, img = image
    mean = np.random.default_rng(1).uniform(0, 255, (1, 3, 14, 14)).astype(np.float32)
    save_mean_file(mean, tmp_path / "mean.binaryproto")
    src = window_file(root, [(1, 0.9, 2, 3, 11, 17)])
    net = window_net(src, "batch_size: 1 fg_fraction: 1",
                     f'crop_size: 10 mean_file: "{tmp_path / "mean.binaryproto"}"')
    net.forward()
    expected = chw(resize_linear(img[3:18, 2:12], 10, 10)) - mean[0][:, 2:12, 2:12]
    np.testing.assert_array_equal(net.blobs["data"].data[0], expected)


def test_sampling_counts_labels_and_seeded_repeat(image):
    root, _ = image
    windows = [(c, 0.9, c, c, c + 5, c + 6) for c in (1, 2, 3)]
    windows += [(7, 0.2, 0, 0, 4, 4), (7, 0.3, 10, 10, 19, 19), (9, 0.45, 0, 0, 9, 9)]

    def run():
        caffe.set_random_seed(5)
        net = window_net(window_file(root, windows),
                         "batch_size: 8 fg_fraction: 0.25 bg_threshold: 0.4")
        out = []
        for _ in range(3):
            net.forward()
            out.append((net.blobs["data"].data.copy(), net.blobs["label"].data.copy()))
        return out

    a, b = run(), run()
    for (da, la), (db, lb) in zip(a, b):
        np.testing.assert_array_equal(da, db)
        np.testing.assert_array_equal(la, lb)
        assert (la[:6] == 0).all() and set(la[6:]) <= {1, 2, 3}


@pytest.mark.parametrize("windows,params,transform,match", [
    ([(1, 0.9, 0, 0, 5, 5)], "batch_size: 2", "", r"crop_size must be set"),
    ([(1, 0.9, 0, 0, 5, 5)], "batch_size: 4", "crop_size: 10", r"no background window"),
    ([(1, 0.1, 0, 0, 5, 5)], "batch_size: 4", "crop_size: 10", r"no foreground window"),
    ([(0, 0.9, 0, 0, 5, 5)], "batch_size: 4", "crop_size: 10", r"foreground window has "
                                                               r"class 0"),
    ([(1, 0.9, 0, 0, 5, 5)], 'batch_size: 1 crop_mode: "fit"', "crop_size: 10",
     r"crop_mode must be"),
    ([(1, 0.9, 0, 0, 5, 5)], "batch_size: 1 context_pad: 5", "crop_size: 10",
     r"context_pad 5 leaves no room"),
])
def test_bad_parameters(image, windows, params, transform, match):
    root, _ = image
    with pytest.raises(LayerError, match=r"'win' \(type WindowData\).*" + match):
        window_net(window_file(root, windows), params, transform)


def test_bad_window_files(image, tmp_path):
    root, _ = image
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(LayerError, match="is empty"):
        window_net(tmp_path / "empty.txt", "batch_size: 1")
    (tmp_path / "cut.txt").write_text("# 0\nimg.png\n3 20 20 2\n1 0.9 0 0 5 5\n")
    with pytest.raises(LayerError, match="ends inside record #0"):
        window_net(tmp_path / "cut.txt", "batch_size: 1")
    (tmp_path / "junk.txt").write_text("% 0\nimg.png\n3 20 20 0\n")
    with pytest.raises(LayerError, match="malformed in record #0"):
        window_net(tmp_path / "junk.txt", "batch_size: 1")
    with pytest.raises(LayerError, match="says 1 channels"):
        window_net(window_file(root, [(1, 0.9, 0, 0, 5, 5)], "gray.txt", channels=1),
                   "batch_size: 1 fg_fraction: 1")


def test_missing_image_and_window_outside_reach_the_caller(image):
    root, _ = image
    src = window_file(root, [(1, 0.9, 0, 0, 5, 5)])
    src.write_text(src.read_text().replace(str(root / "img.png"), str(root / "gone.png")))
    net = window_net(src, "batch_size: 1 fg_fraction: 1")
    with pytest.raises(LayerError, match=r"'win'.*gone.png"):
        net.forward()
    net = window_net(window_file(root, [(1, 0.9, 15, 15, 25, 25)], "out.txt"),
                     "batch_size: 1 fg_fraction: 1")
    with pytest.raises(LayerError, match="outside the image"):
        net.forward()
