"""pycaffe's ``caffe.draw``: pictures of a net's layers and blobs, without graphviz.

pycaffe drew nets through pydot and graphviz. caffelite lays the graph out itself
(``draw_layout``) and renders PNG (or JPEG, GIF, BMP, PDF) with Pillow, SVG as text, and DOT
text for anyone who does have graphviz. The picture follows pycaffe's: layers are boxes
coloured by type (convolution red, pooling orange, inner product purple, others blue) whose
label gives the name, the type and the key parameters; blobs are grey octagons; a layer
computed in place (ReLU, Dropout, ...) is drawn in green beside the blob it rewrites; edges
out of a layer are labelled with its num_output (or its batch size, for Data).

    import caffelite.draw
    caffelite.draw.draw_net_to_file(net_param, "net.png", rankdir="TB", phase=caffe.TEST)
"""
import os
from collections import OrderedDict

from .draw_layout import RANKDIRS, layered_layout
from .draw_render import DrawError, render_raster, render_svg

LAYER_COLOR = "#6495ED"
NEURON_LAYER_COLOR = "#90EE90"
BLOB_COLOR = "#E0E0E0"
TYPE_COLORS = {"Convolution": "#FF5050", "Deconvolution": "#FF5050", "Pooling": "#FF9900",
               "InnerProduct": "#CC33FF"}
RASTER_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "gif": "GIF", "bmp": "BMP",
                  "pdf": "PDF"}
TEXT_FORMATS = ("svg", "dot", "gv")
_PARAM_LAYERS = {"Convolution": "convolution_param", "Deconvolution": "convolution_param",
                 "InnerProduct": "inner_product_param"}


def choose_color_by_layertype(layertype):
    return TYPE_COLORS.get(layertype, LAYER_COLOR)


def get_pooling_types_dict():
    """{enum number: name} of PoolingParameter.PoolMethod."""
    from .proto import caffe_pb2
    desc = caffe_pb2.PoolingParameter.PoolMethod.DESCRIPTOR
    return {v.number: name for name, v in desc.values_by_name.items()}


def get_edge_label(layer):
    """The label pycaffe puts on the edges out of a layer ('' for none)."""
    if layer.type == "Data":
        return f"Batch {layer.data_param.batch_size}"
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return ""


def get_layer_lr_mult(layer):
    """The lr_mult of each learnable blob of a Convolution/Deconvolution/InnerProduct layer
    (1 where no ``param`` gives one); None for other types."""
    field = _PARAM_LAYERS.get(layer.type)
    if field is None:
        return None
    count = 2 if getattr(layer, field).bias_term else 1
    return [layer.param[i].lr_mult if i < len(layer.param) else 1.0 for i in range(count)]


def _spatial(layer):
    def first(values, default):
        return values[0] if len(values) else default

    if layer.type == "Pooling":
        p = layer.pooling_param
        if p.global_pooling:
            return ["global pooling"]
        kernel = (p.kernel_h, p.kernel_w) if p.kernel_h or p.kernel_w else (p.kernel_size,) * 2
        stride = (p.stride_h, p.stride_w) if p.stride_h or p.stride_w else (p.stride,) * 2
        pad = (p.pad_h, p.pad_w) if p.pad_h or p.pad_w else (p.pad,) * 2
    else:
        p = layer.convolution_param
        kernel = (p.kernel_h, p.kernel_w) if p.kernel_h or p.kernel_w else \
            (first(p.kernel_size, 1),) * 2
        stride = (p.stride_h, p.stride_w) if p.stride_h or p.stride_w else \
            (first(p.stride, 1),) * 2
        pad = (p.pad_h, p.pad_w) if p.pad_h or p.pad_w else (first(p.pad, 0),) * 2

    def fmt(pair):
        return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
    return [f"kernel size: {fmt(kernel)}", f"stride: {fmt(stride)}", f"pad: {fmt(pad)}"]


def get_layer_label(layer, rankdir, display_lrm=False):
    """The lines of a layer's label: name, (type), spatial parameters, num_output, lr mults.

    As in pycaffe, a vertical graph (TB/BT) keeps the parameters on one line, a horizontal one
    (LR/RL) gives each its own line.
    """
    lines = [layer.name]
    if layer.type == "Pooling":
        pool = get_pooling_types_dict().get(layer.pooling_param.pool, "?")
        lines.append(f"({layer.type} {pool})")
    else:
        lines.append(f"({layer.type})")
    details = []
    if layer.type in ("Convolution", "Deconvolution", "Pooling"):
        details.append(_spatial(layer))
    field = _PARAM_LAYERS.get(layer.type)
    if field is not None:
        details.append([f"num_output: {getattr(layer, field).num_output}"])
    if display_lrm:
        lr_mult = get_layer_lr_mult(layer)
        if lr_mult and any(lr_mult):
            details.append(["lr mult: " + ", ".join(f"{x:.1f}" for x in lr_mult)])
    vertical = rankdir in ("TB", "BT")
    for group in details:
        if vertical:
            lines.append(" ".join(group))
        else:
            lines.extend(group)
    return lines


def _included(layer, phase):
    """pycaffe's phase filter: include/exclude rules compared on phase only (a rule that sets
    no phase matches every phase)."""
    if phase is None:
        return True
    if len(layer.include) and len(layer.exclude):
        raise DrawError(f"layer '{layer.name}' (type {layer.type}) has both include and "
                        f"exclude rules")
    if len(layer.include):
        return any(not r.HasField("phase") or r.phase == phase for r in layer.include)
    # an exclude rule is applied only when it names the phase (stages are not known here)
    return not any(r.HasField("phase") and r.phase == phase for r in layer.exclude)


class NetGraph:
    """The drawable graph of a net: nodes (layers, blobs), edges, and layout units/ranks.

    ``nodes[id]`` is a dict with ``kind`` ('layer', 'neuron' for in-place layers, 'blob'),
    ``name``, ``type`` (layers), ``lines`` (the label) and ``color``.
    """

    def __init__(self, name, rankdir):
        self.name, self.rankdir = name, rankdir
        self.nodes = OrderedDict()
        self.edges = []        # (source id, target id, label)
        self.units = OrderedDict()
        self.ranks = {}

    def layers(self):
        return [n for n in self.nodes.values() if n["kind"] != "blob"]

    def blobs(self):
        return [n for n in self.nodes.values() if n["kind"] == "blob"]

    # -- output -------------------------------------------------------------------------
    def to_dot(self):
        def q(s):
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out = [f"digraph {q(self.name)} {{", f"  rankdir={self.rankdir};"]
        for nid, n in self.nodes.items():
            label = "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in n["lines"])
            shape = "octagon" if n["kind"] == "blob" else "record"
            out.append(f'  {nid} [label="{label}", shape={shape}, style=filled, '
                       f'fillcolor="{n["color"]}"];')
        for src, dst, label in self.edges:
            out.append(f'  {src} -> {dst}' + (f' [label={q(label)}];' if label else ";"))
        for members in self.units.values():
            for a in members[1:]:          # in-place layers read and write their blob
                out.append(f"  {members[0]} -> {a};")
                out.append(f"  {a} -> {members[0]};")
        out.append("}")
        return "\n".join(out) + "\n"

    def layout(self, measure, line_height):
        sizes = {}
        for nid, n in self.nodes.items():
            width = max(measure(line) for line in n["lines"])
            height = line_height * len(n["lines"])
            pad_x = 16 if n["kind"] == "blob" else 10
            sizes[nid] = (int(width + 2 * pad_x), int(height + 12))
        edges = [(s, d) for s, d, _ in self.edges]
        return sizes, layered_layout(self.units, self.ranks, sizes, edges, self.rankdir)


def _as_net_param(caffe_net):
    from .proto import caffe_pb2
    if isinstance(caffe_net, (str, os.PathLike)):
        from .formats.netfile import read_net
        return read_net(caffe_net)
    if not isinstance(caffe_net, caffe_pb2.NetParameter):
        raise DrawError(f"expected a NetParameter (or a prototxt path), got "
                        f"{type(caffe_net).__name__}")
    if len(caffe_net.layers) or len(caffe_net.input):    # V1 layers or net-level inputs
        from .formats.upgrade import upgrade_net
        param = caffe_pb2.NetParameter()
        param.CopyFrom(caffe_net)
        return upgrade_net(param, "<NetParameter>")
    return caffe_net


def get_graph(caffe_net, rankdir="LR", label_edges=True, phase=None, display_lrm=False):
    """The NetGraph of a NetParameter, keeping the layers of ``phase`` (None: all)."""
    if rankdir not in RANKDIRS:
        raise DrawError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if phase is not None and phase not in (0, 1):
        raise DrawError(f"phase must be caffe.TRAIN (0), caffe.TEST (1) or None, got {phase!r}")
    param = _as_net_param(caffe_net)
    graph = NetGraph(param.name or "Net", rankdir)
    blob_of, consumed = {}, set()

    def blob(name):
        if name not in blob_of:
            nid = f"b{len(blob_of)}"
            blob_of[name] = nid
            graph.nodes[nid] = dict(kind="blob", name=name, lines=[name], color=BLOB_COLOR)
            graph.units[nid] = [nid]
            graph.ranks[nid] = 0
        return blob_of[name]

    for i, layer in enumerate(l for l in param.layer if _included(l, phase)):
        nid = f"l{i}"
        lines = get_layer_label(layer, rankdir, display_lrm)
        in_place = (len(layer.bottom) == 1 and len(layer.top) == 1
                    and layer.bottom[0] == layer.top[0])
        if in_place:
            graph.nodes[nid] = dict(kind="neuron", name=layer.name, type=layer.type,
                                    lines=lines, color=NEURON_LAYER_COLOR)
            graph.units[blob(layer.bottom[0])].append(nid)
            continue
        graph.nodes[nid] = dict(kind="layer", name=layer.name, type=layer.type, lines=lines,
                                color=choose_color_by_layertype(layer.type))
        graph.units[nid] = [nid]
        bottoms = [blob(b) for b in layer.bottom]
        rank = max((graph.ranks[b] + 1 for b in bottoms), default=0)
        graph.ranks[nid] = rank
        for b in bottoms:
            graph.edges.append((b, nid, ""))
        # pycaffe labels the edges out of a layer with its num_output (shown in the box here)
        # or batch size; caffelite puts that label once, on the first top's edge
        label = get_edge_label(layer) if label_edges and layer.type not in _PARAM_LAYERS else ""
        for j, t in enumerate(layer.top):
            tid = blob(t)
            if tid not in consumed:
                graph.ranks[tid] = max(graph.ranks[tid], rank + 1)
            graph.edges.append((nid, tid, label if j == 0 else ""))
        consumed.update(bottoms)
    return graph


def get_pydot_graph(caffe_net, rankdir, label_edges=True, phase=None, display_lrm=False):
    """pycaffe's pydot graph, built from caffelite's DOT text (needs the optional pydot)."""
    try:
        import pydot
    except ImportError:
        raise DrawError("get_pydot_graph needs the pydot package, which is not installed; "
                        "caffelite.draw.get_graph() gives caffelite's own graph, and "
                        "draw_net() renders it without pydot or graphviz") from None
    dot = get_graph(caffe_net, rankdir, label_edges, phase, display_lrm).to_dot()
    return pydot.graph_from_dot_data(dot)[0]


# -- rendering ------------------------------------------------------------------------------

def draw_net(caffe_net, rankdir, ext="png", phase=None, display_lrm=False):
    """The net drawn as bytes in format ``ext`` (png, svg, dot, jpg, gif, bmp or pdf)."""
    ext = ext.lower().lstrip(".")
    if ext not in RASTER_FORMATS and ext not in TEXT_FORMATS:
        raise DrawError(f"cannot draw to format '{ext}': use one of "
                        f"{', '.join(sorted(set(RASTER_FORMATS) | set(TEXT_FORMATS)))}")
    graph = get_graph(caffe_net, rankdir, phase=phase, display_lrm=display_lrm)
    if ext == "svg":
        return render_svg(graph)
    if ext in ("dot", "gv"):
        return graph.to_dot().encode("utf-8")
    return render_raster(graph, RASTER_FORMATS[ext])


def draw_net_to_file(caffe_net, filename, rankdir="LR", phase=None, display_lrm=False):
    """Draw the net to ``filename``; the format comes from its extension."""
    filename = os.fspath(filename)
    ext = os.path.splitext(filename)[1].lstrip(".")
    if ext.lower() not in RASTER_FORMATS and ext.lower() not in TEXT_FORMATS:
        raise DrawError(f"{filename}: cannot tell the format from the extension "
                        f"'{ext or '(none)'}': use one of "
                        f"{', '.join(sorted(set(RASTER_FORMATS) | set(TEXT_FORMATS)))}")
    data = draw_net(caffe_net, rankdir, ext, phase, display_lrm)
    tmp = filename + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, filename)
