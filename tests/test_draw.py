"""caffelite.draw and ``caffelite draw_net``: net pictures without pydot or graphviz."""
import io
import os
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

import caffelite as caffe
import caffelite.cli.draw_net  # noqa: F401  (registers the command)
from caffelite import draw
from caffelite.cli.main import main
from caffelite.draw_layout import layered_layout
from caffelite.formats.netfile import read_net

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENET = os.path.join(REPO, "models", "lenet", "train_val.prototxt")
GOOGLENET = os.path.join(REPO, "models", "googlenet", "deploy.prototxt")
SVG = "{http://www.w3.org/2000/svg}"


def svg_nodes(data):
    root = ET.fromstring(data)
    groups = [g for g in root.iter(SVG + "g") if "node" in g.get("class", "").split()]
    layers = [g for g in groups if "layer" in g.get("class").split()]
    blobs = [g for g in groups if "blob" in g.get("class").split()]
    return root, layers, blobs


def expected(param, phase):
    layers = [l for l in param.layer if draw._included(l, phase)]
    blobs = {b for l in layers for b in list(l.bottom) + list(l.top)}
    return layers, blobs


@pytest.mark.parametrize("path,rankdir", [(LENET, "LR"), (LENET, "TB"), (GOOGLENET, "TB")])
def test_png_opens_with_a_sensible_size(path, rankdir):
    param = read_net(path)
    data = draw.draw_net(param, rankdir, ext="png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    w, h = image.size
    n_layers, _ = expected(param, None)
    long_side, short_side = (w, h) if rankdir == "LR" else (h, w)
    assert long_side > short_side            # the graph runs along rankdir
    assert 200 < long_side < 250 * len(n_layers)
    assert 100 < short_side < 4000
    # mostly white, with coloured boxes
    colours = {c for _, c in image.getcolors(1 << 20)}
    assert (255, 255, 255) in colours and (0xFF, 0x50, 0x50) in colours


@pytest.mark.parametrize("path", [LENET, GOOGLENET])
def test_svg_has_one_node_per_layer_and_blob(path):
    param = read_net(path)
    root, layers, blobs = svg_nodes(draw.draw_net(param, "TB", ext="svg"))
    want_layers, want_blobs = expected(param, None)
    assert [g.get("data-name") for g in layers] == [l.name for l in want_layers]
    assert {g.get("data-name") for g in blobs} == want_blobs
    assert len(blobs) == len(want_blobs)
    edges = [p for p in root.iter(SVG + "polyline") if p.get("class") == "edge"]
    in_place = sum(1 for l in want_layers if list(l.bottom) == list(l.top) and len(l.top) == 1)
    assert len(edges) == sum(len(l.bottom) + len(l.top) for l in want_layers) - 2 * in_place
    assert int(float(root.get("width"))) > 100 and int(float(root.get("height"))) > 100


def test_labels_show_name_type_and_parameters():
    param = read_net(LENET)
    conv1 = next(l for l in param.layer if l.name == "conv1")
    pool1 = next(l for l in param.layer if l.name == "pool1")
    assert draw.get_layer_label(conv1, "LR") == [
        "conv1", "(Convolution)", "kernel size: 5", "stride: 1", "pad: 0", "num_output: 20"]
    assert draw.get_layer_label(pool1, "TB") == [
        "pool1", "(Pooling MAX)", "kernel size: 2 stride: 2 pad: 0"]
    assert draw.get_layer_label(conv1, "TB", display_lrm=True)[-1] == "lr mult: 1.0, 2.0"
    svg = draw.draw_net(param, "LR", ext="svg").decode()
    assert "kernel size: 5" in svg and "(SoftmaxWithLoss)" in svg and "Batch 64" in svg


def test_colours_follow_pycaffe():
    graph = draw.get_graph(read_net(LENET), "TB")
    colour = {n["name"]: n["color"] for n in graph.layers()}
    assert colour["conv1"] == "#FF5050" and colour["pool1"] == "#FF9900"
    assert colour["ip1"] == "#CC33FF" and colour["loss"] == "#6495ED"
    assert colour["relu1"] == "#90EE90"                     # in place
    assert {n["color"] for n in graph.blobs()} == {"#E0E0E0"}


@pytest.mark.parametrize("phase,names", [
    (caffe.TRAIN, ["mnist", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "loss"]),
    (caffe.TEST, ["mnist", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2",
                  "accuracy", "loss"]),
    (None, ["mnist", "mnist", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2",
            "accuracy", "loss"]),
])
def test_phase_filtering(phase, names):
    _, layers, blobs = svg_nodes(draw.draw_net(read_net(LENET), "LR", "svg", phase=phase))
    assert [g.get("data-name") for g in layers] == names
    assert ("accuracy" in {g.get("data-name") for g in blobs}) == ("accuracy" in names)


def test_layout_is_layered_along_rankdir():
    graph = draw.get_graph(read_net(LENET), "TB", phase=caffe.TRAIN)
    _, lay = graph.layout(lambda s: 7 * len(s), 17)
    box = {graph.nodes[n]["name"] + ":" + graph.nodes[n]["kind"]: b for n, b in lay.boxes.items()}
    order = ["conv1:layer", "conv1:blob", "pool1:layer", "pool1:blob", "ip1:layer",
             "ip1:blob", "ip2:layer", "loss:layer"]
    tops = [box[k][1] for k in order]
    assert tops == sorted(tops)
    assert box["relu1:neuron"][1] < box["ip1:blob"][1] + box["ip1:blob"][3]   # beside its blob
    for a in lay.boxes.values():          # no overlaps
        for b in lay.boxes.values():
            if a is not b:
                assert (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or
                        a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1])
    _, lay_lr = draw.get_graph(read_net(LENET), "RL", phase=caffe.TRAIN).layout(
        lambda s: 7 * len(s), 17)
    xs = {graph.nodes[n]["name"] + graph.nodes[n]["kind"]: b[0] for n, b in lay_lr.boxes.items()}
    assert xs["conv1layer"] > xs["pool1layer"] > xs["losslayer"]   # right to left


def test_long_edges_bend_around_nodes():
    # a skip edge from rank 0 to rank 4 gets points on each rank it crosses
    units = {n: [n] for n in "abcde"}
    ranks = dict(a=0, b=1, c=2, d=3, e=4)
    sizes = {n: (40, 20) for n in "abcde"}
    lay = layered_layout(units, ranks, sizes, [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"),
                                               ("a", "e")], "TB")
    assert len(lay.edges[0]) == 2 and len(lay.edges[4]) == 2 + 2 * 3
    skip_x = [x for x, _ in lay.edges[4][1:-1]]
    for n in "bcd":
        x, _, w, _ = lay.boxes[n]
        assert all(not (x <= sx <= x + w) for sx in skip_x)


def test_dot_output_and_formats(tmp_path):
    dot = draw.draw_net(read_net(LENET), "TB", ext="dot").decode()
    assert dot.startswith('digraph "LeNet"') and "rankdir=TB" in dot and "->" in dot
    draw.draw_net_to_file(read_net(LENET), str(tmp_path / "n.jpg"), phase=caffe.TEST)
    assert Image.open(str(tmp_path / "n.jpg")).format == "JPEG"
    with pytest.raises(draw.DrawError, match="cannot tell the format"):
        draw.draw_net_to_file(read_net(LENET), str(tmp_path / "n.tiff2"))
    with pytest.raises(draw.DrawError, match="rankdir"):
        draw.draw_net(read_net(LENET), "XY")
    with pytest.raises(draw.DrawError, match="NetParameter"):
        draw.draw_net(42, "LR")


def test_both_include_and_exclude_is_an_error():
    from caffelite.proto import caffe_pb2
    param = caffe_pb2.NetParameter()
    layer = param.layer.add(name="odd", type="ReLU", bottom=["x"], top=["y"])
    layer.include.add(phase=caffe.TRAIN)
    layer.exclude.add(phase=caffe.TEST)
    with pytest.raises(draw.DrawError, match="'odd'.*both include and exclude"):
        draw.draw_net(param, "LR", phase=caffe.TRAIN)
    assert draw.draw_net(param, "LR", "svg")       # phase None draws everything


def test_get_pydot_graph_without_pydot():
    try:
        import pydot  # noqa: F401
    except ImportError:  # the usual case: pydot is not a dependency
        with pytest.raises(draw.DrawError, match="pydot"):
            draw.get_pydot_graph(read_net(LENET), "LR")
    else:
        assert draw.get_pydot_graph(read_net(LENET), "LR") is not None


def test_cli_draw_net(tmp_path, capfd):
    out = tmp_path / "lenet.png"
    assert main(["draw_net", LENET, str(out), "--rankdir", "TB", "--phase", "TRAIN",
                 "--display_lrm"]) == 0
    assert Image.open(str(out)).size[1] > Image.open(str(out)).size[0]
    svg = tmp_path / "lenet.svg"
    assert main(["draw_net", LENET, str(svg), "-phase", "TEST"]) == 0
    _, layers, _ = svg_nodes(svg.read_bytes())
    assert "accuracy" in [g.get("data-name") for g in layers]
    assert main(["draw_net", LENET, str(tmp_path / "x.abc")]) == 1
    assert main(["draw_net", str(tmp_path / "missing.prototxt"), str(out)]) == 1
    err = capfd.readouterr().err
    assert "cannot tell the format" in err and "missing.prototxt: no such file" in err
    assert not (tmp_path / "x.abc").exists()
