"""ImageData: list parsing (last space), root_folder, resize, is_color, shuffle at every wrap,
rand_skip, batch_size default, transformations, and errors that name the line."""
import numpy as np
import pytest
from google.protobuf import text_format

import caffelite as caffe
from caffelite.data.image import resize_linear
from caffelite.errors import LayerError
from caffelite.proto import caffe_pb2
from caffelite.testing.data_fixtures import encode_image


def image_net(source, params="", transform="", phase=caffe.TEST):
    text = (f'layer {{ name: "img" type: "ImageData" top: "data" top: "label" '
            f'transform_param {{ {transform} }} '
            f'image_data_param {{ source: "{source}" {params} }} }}')
    return caffe.Net(text_format.Parse(text, caffe_pb2.NetParameter()), phase)


@pytest.fixture
def images(tmp_path):
    """Five 6x8 BGR PNGs (one in a folder with a space) and a list file of them."""
    rng = np.random.default_rng(0)
    (tmp_path / "my pics").mkdir()
    imgs, lines = [], []
    for i in range(5):
        img = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        rel = f"my pics/im {i}.png" if i == 2 else f"im{i}.png"
        (tmp_path / rel).write_bytes(encode_image(img, "PNG"))
        imgs.append(img)
        lines.append(f"{rel} {10 + i}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return tmp_path, np.stack([im.transpose(2, 0, 1) for im in imgs]), 10 + np.arange(5)


def collect(net, passes):
    data, labels = [], []
    for _ in range(passes):
        net.forward()
        data.append(net.blobs["data"].data.copy())
        labels.append(net.blobs["label"].data.copy())
    return np.concatenate(data), np.concatenate(labels)


def test_reads_in_order_with_root_folder_labels_and_wrap(images):
    root, x, y = images
    net = image_net(root / "list.txt", f'batch_size: 2 root_folder: "{root}/"')
    assert net.blobs["data"].shape == (2, 3, 6, 8) and net.blobs["label"].shape == (2,)
    data, labels = collect(net, 4)                      # 8 items from 5: wraps
    idx = np.arange(8) % 5
    np.testing.assert_array_equal(data, x[idx].astype(np.float32))
    np.testing.assert_array_equal(labels, y[idx])


def test_batch_size_defaults_to_one(images, monkeypatch):
    root, x, _ = images
    monkeypatch.chdir(root)
    net = image_net("list.txt")
    assert net.blobs["data"].shape == (1, 3, 6, 8)
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data[0], x[0])


def test_paths_resolved_when_built_so_later_chdir_is_harmless(images, monkeypatch, tmp_path):
    root, x, _ = images
    monkeypatch.chdir(root)
    net = image_net("list.txt", "batch_size: 5")
    monkeypatch.chdir(tmp_path.parent)
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data, x.astype(np.float32))


def test_resize_gray_and_transform(images):
    root, x, _ = images
    net = image_net(root / "list.txt", f'batch_size: 5 root_folder: "{root}/" new_height: 9 '
                                       f'new_width: 5 is_color: false',
                    transform="crop_size: 4 mean_value: 100 scale: 0.5")
    assert net.blobs["data"].shape == (5, 1, 4, 4)
    net.forward()
    bgr = x.transpose(0, 2, 3, 1).astype(np.uint32)
    gray = ((9797 * bgr[..., 2] + 19234 * bgr[..., 1] + 3737 * bgr[..., 0]) >> 15)
    for i in range(5):
        small = resize_linear(gray[i].astype(np.uint8), 9, 5)
        expected = (small[2:6, 0:4].astype(np.float32) - 100) * np.float32(0.5)
        np.testing.assert_array_equal(net.blobs["data"].data[i, 0], expected)


def test_shuffle_is_a_new_permutation_every_epoch_and_seeded(images):
    root, x, y = images

    def run():
        caffe.set_random_seed(4)
        net = image_net(root / "list.txt", f'batch_size: 5 shuffle: true '
                                           f'root_folder: "{root}/"')
        return collect(net, 6)

    (data, labels), (data2, labels2) = run(), run()
    np.testing.assert_array_equal(labels, labels2)
    np.testing.assert_array_equal(data, data2)
    epochs = labels.reshape(6, 5)
    for e in epochs:
        assert sorted(e) == list(y)                     # every epoch is a permutation
    assert len({tuple(e) for e in epochs}) > 1          # reshuffled at the wraps
    for d, l in zip(data, labels):                      # images travel with their labels
        np.testing.assert_array_equal(d, x[int(l) - 10])


def test_rand_skip_skips_at_most_rand_skip_lines(images):
    root, x, y = images
    starts = set()
    for seed in range(12):
        caffe.set_random_seed(seed)
        net = image_net(root / "list.txt", f'rand_skip: 4 root_folder: "{root}/"')
        net.forward()
        starts.add(int(net.blobs["label"].data[0]) - 10)
    assert starts <= {0, 1, 2, 3} and len(starts) > 1


def test_train_random_crop_stays_inside_the_image(images):
    root, x, _ = images
    caffe.set_random_seed(0)
    net = image_net(root / "list.txt", f'batch_size: 5 root_folder: "{root}/"',
                    transform="crop_size: 5 mirror: true", phase=caffe.TRAIN)
    net.forward()
    for i, item in enumerate(net.blobs["data"].data):
        assert any(np.array_equal(item, c) or np.array_equal(item, c[:, :, ::-1])
                   for c in (x[i, :, h:h + 5, w:w + 5] for h in range(2) for w in range(4)))


@pytest.mark.parametrize("content,match", [
    ("a.png 1\nb.png\n", r"list.txt:2: 'b.png' has no label"),
    ("a.png one\n", r"list.txt:1: label 'one'"),
    ("\n\n", "lists no images"),
])
def test_bad_list_lines_name_the_line(tmp_path, content, match):
    (tmp_path / "list.txt").write_text(content)
    with pytest.raises(LayerError, match=match):
        image_net(tmp_path / "list.txt")


def test_missing_image_names_the_line(images):
    root, _, _ = images
    lines = (root / "list.txt").read_text().splitlines()
    lines.insert(3, "gone.png 7")
    (root / "list.txt").write_text("\n".join(lines))
    net = image_net(root / "list.txt", f'batch_size: 3 root_folder: "{root}/"')
    net.forward()
    with pytest.raises(LayerError, match=r"'img' \(type ImageData\).*list.txt:4.*gone.png"):
        net.forward()


def test_bad_parameters(images):
    root, _, _ = images
    with pytest.raises(LayerError, match="new_height and new_width"):
        image_net(root / "list.txt", "new_height: 4")
    with pytest.raises(LayerError, match="cannot be read"):
        image_net(root / "nothing.txt")
    with pytest.raises(LayerError, match=r"crop_size 7 is larger than image 'im0.png'"):
        image_net(root / "list.txt", f'root_folder: "{root}/"', transform="crop_size: 7")
    with pytest.raises(LayerError, match="rand_skip drew"):
        for seed in range(50):
            caffe.set_random_seed(seed)
            image_net(root / "list.txt", f'rand_skip: 100 root_folder: "{root}/"')


def test_images_of_different_sizes_need_a_crop(tmp_path):
    rng = np.random.default_rng(1)
    for i, shape in enumerate([(6, 6, 3), (7, 9, 3)]):
        (tmp_path / f"{i}.png").write_bytes(encode_image(rng.integers(0, 256, shape,
                                                                      dtype=np.uint8)))
    (tmp_path / "list.txt").write_text("0.png 0\n1.png 1\n")
    net = image_net(tmp_path / "list.txt", f'batch_size: 2 root_folder: "{tmp_path}/"',
                    transform="crop_size: 5")
    net.forward()
    assert net.blobs["data"].shape == (2, 3, 5, 5)
    net = image_net(tmp_path / "list.txt", f'batch_size: 2 root_folder: "{tmp_path}/"')
    with pytest.raises(LayerError, match=r"'1.png'.*7x9.*same batch"):
        net.forward()
