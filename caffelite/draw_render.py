"""Rendering a laid-out net graph (``draw.NetGraph``) as a raster image with Pillow or as
SVG text."""
import io
from xml.sax.saxutils import escape, quoteattr

from .errors import CaffeliteError

FONT_SIZE = 13


class DrawError(CaffeliteError):
    """A net or an option that cannot be drawn; the message says which."""


def _arrowhead(p_from, p_to, size=8.0):
    (x0, y0), (x1, y1) = p_from, p_to
    dx, dy = x1 - x0, y1 - y0
    norm = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    ux, uy = dx / norm, dy / norm
    bx, by = x1 - ux * size, y1 - uy * size
    return [(x1, y1), (bx - uy * size * 0.45, by + ux * size * 0.45),
            (bx + uy * size * 0.45, by - ux * size * 0.45)]


def _octagon(x, y, w, h):
    c = min(8.0, h / 3.0, w / 4.0)
    return [(x + c, y), (x + w - c, y), (x + w, y + c), (x + w, y + h - c), (x + w - c, y + h),
            (x + c, y + h), (x, y + h - c), (x, y + c)]


def _place_labels(graph, lay, measure, height=14):
    """Centres of the edge labels: on the edge's first segment, slid along it to avoid the
    labels already placed; {edge index: (x, y)}."""
    placed, out = [], {}
    for k, ((_, _, label), points) in enumerate(zip(graph.edges, lay.edges)):
        if not label:
            continue
        (x0, y0), (x1, y1) = points[0], points[1]
        w = measure(label) + 4
        for t in (0.5, 0.3, 0.7, 0.2, 0.8, 0.5):
            cx, cy = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
            box = (cx - w / 2, cy - height / 2, cx + w / 2, cy + height / 2)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):
                break
        placed.append(box)
        out[k] = (cx, cy)
    return out


TITLE_HEIGHT = 28


def _font(size=FONT_SIZE):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:          # Pillow < 10.1: the fixed bitmap font only
        return ImageFont.load_default()


def render_raster(graph, fmt="PNG"):
    """Bytes of the graph drawn with Pillow in format ``fmt`` (PNG, JPEG, GIF, BMP, PDF)."""
    from PIL import Image, ImageDraw
    font = _font()
    small = _font(FONT_SIZE - 2)

    def measure(text, f=font):
        left, _, right, _ = f.getbbox(text)
        return right - left

    line_height = FONT_SIZE + 4
    sizes, lay = graph.layout(measure, line_height)
    width, height = lay.width, lay.height + TITLE_HEIGHT
    if width * height > 200_000_000:
        raise DrawError(f"net '{graph.name}' would make a {width}x{height} image; draw it as "
                        f"SVG instead")
    image = Image.new("RGB", (max(width, 1), max(height, 1)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((16, 7), graph.name, fill="black", font=_font(FONT_SIZE + 3))

    def shift(points):
        return [(x, y + TITLE_HEIGHT) for x, y in points]

    edge_color = (60, 60, 60)
    for (src, dst, label), points in zip(graph.edges, lay.edges):
        pts = shift(points)
        draw.line(pts, fill=edge_color, width=1)
        draw.polygon(_arrowhead(pts[-2], pts[-1]), fill=edge_color)
    for a, b in lay.links:
        a, b = shift([a, b])
        draw.line([a, b], fill=edge_color, width=1)
        draw.polygon(_arrowhead(a, b, 6), fill=edge_color)
        draw.polygon(_arrowhead(b, a, 6), fill=edge_color)
    for k, (cx, cy) in _place_labels(graph, lay, lambda t: measure(t, small)).items():
        label = graph.edges[k][2]
        cy += TITLE_HEIGHT
        w = measure(label, small)
        draw.rectangle((cx - w / 2 - 2, cy - 7, cx + w / 2 + 2, cy + 7), fill="white")
        draw.text((cx, cy), label, fill=(90, 90, 90), font=small, anchor="mm")
    for nid, node in graph.nodes.items():
        x, y, w, h = lay.boxes[nid]
        y += TITLE_HEIGHT
        if node["kind"] == "blob":
            draw.polygon(_octagon(x, y, w, h), fill=node["color"], outline="black")
        else:
            draw.rounded_rectangle((x, y, x + w, y + h), radius=5, fill=node["color"],
                                   outline="black")
        top = y + (h - line_height * len(node["lines"])) / 2.0
        for k, line in enumerate(node["lines"]):
            draw.text((x + w / 2.0, top + line_height * (k + 0.5)), line, fill="black",
                      font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def render_svg(graph):
    """The graph as an SVG document (bytes, UTF-8); one ``<g class="node ...">`` per node."""
    char_w, line_height = FONT_SIZE * 0.62, FONT_SIZE + 4
    sizes, lay = graph.layout(lambda s: len(s) * char_w, line_height)
    width, height = lay.width, lay.height + TITLE_HEIGHT

    def pts(points):
        return " ".join(f"{x:.1f},{y + TITLE_HEIGHT:.1f}" for x, y in points)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, '
           f'monospace" font-size="{FONT_SIZE}">',
           f"<title>{escape(graph.name)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
           'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#3c3c3c"/></marker></defs>',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="16" y="19" font-size="{FONT_SIZE + 3}">{escape(graph.name)}</text>',
           '<g class="edges" fill="none" stroke="#3c3c3c">']
    for (src, dst, label), points in zip(graph.edges, lay.edges):
        out.append(f'<polyline class="edge" data-source="{src}" data-target="{dst}" '
                   f'points="{pts(points)}" marker-end="url(#arrow)"/>')
    for a, b in lay.links:
        out.append(f'<polyline class="link" points="{pts([a, b])}" '
                   f'marker-start="url(#arrow)" marker-end="url(#arrow)"/>')
    out.append("</g>")
    out.append('<g class="edge-labels" font-size="11" fill="#5a5a5a" text-anchor="middle">')
    for k, (x, y) in _place_labels(graph, lay, lambda t: len(t) * 11 * 0.62).items():
        out.append(f'<text x="{x:.1f}" y="{y + TITLE_HEIGHT + 4:.1f}" '
                   f'style="paint-order:stroke" stroke="white" stroke-width="3">'
                   f'{escape(graph.edges[k][2])}</text>')
    out.append("</g>")
    for nid, node in graph.nodes.items():
        x, y, w, h = lay.boxes[nid]
        y += TITLE_HEIGHT
        kind = "blob" if node["kind"] == "blob" else f"layer {node['kind']}"
        out.append(f'<g class="node {kind}" id="{nid}" data-name={quoteattr(node["name"])}>')
        out.append(f"<title>{escape(node['name'])}</title>")
        if node["kind"] == "blob":
            corners = pts(_octagon(x, y - TITLE_HEIGHT, w, h))
            out.append(f'<polygon points="{corners}" fill="{node["color"]}" stroke="black"/>')
        else:
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="5" '
                       f'fill="{node["color"]}" stroke="black"/>')
        top = y + (h - line_height * len(node["lines"])) / 2.0
        for k, line in enumerate(node["lines"]):
            ty = top + line_height * (k + 0.5) + FONT_SIZE * 0.35
            out.append(f'<text x="{x + w / 2.0:.1f}" y="{ty:.1f}" text-anchor="middle">'
                       f"{escape(line)}</text>")
        out.append("</g>")
    out.append("</svg>")
    return ("\n".join(out) + "\n").encode("utf-8")
