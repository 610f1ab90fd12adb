"""A small layered ("Sugiyama") graph layout for ``caffelite.draw``, in pure Python.

The graph is given as *units* placed in *ranks*. A unit is one node or a short row of nodes
drawn side by side (a blob with the in-place layers that rewrite it). Edges join nodes of
different units. The steps are the classic ones:

1. edges spanning several ranks get a chain of dummy points, one per rank crossed;
2. the units of each rank are ordered by barycentre sweeps, keeping the order with the fewest
   crossings;
3. each rank is placed along the cross axis as close as possible (least squares) to where its
   neighbours want it, without overlaps: an isotonic regression solved by pool-adjacent-
   violators, alternating downward and upward passes;
4. ranks are stacked along the main axis; 'TB' runs top to bottom, 'BT' bottom to top, 'LR'
   left to right and 'RL' right to left.

The result is pixel geometry: a box per node, a polyline per edge, connectors inside units.
"""
from collections import defaultdict

RANKDIRS = ("TB", "BT", "LR", "RL")


class Layout:
    """Geometry in pixels: ``boxes[node] = (x, y, w, h)`` (top-left corner), ``edges[i]``
    the polyline of input edge i, ``links`` the connectors between members of a unit, and the
    canvas ``width`` × ``height``."""

    def __init__(self, boxes, edges, links, width, height):
        self.boxes, self.edges, self.links = boxes, edges, links
        self.width, self.height = width, height


def _pav(targets, weights):
    """Isotonic (non-decreasing) least-squares fit of ``targets``: pool adjacent violators."""
    blocks = []   # [mean, weight, count]
    for t, w in zip(targets, weights):
        blocks.append([t, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out = []
    for mean, _, count in blocks:
        out.extend([mean] * count)
    return out


def _median(values):
    values = sorted(values)
    n = len(values)
    if n % 2:
        return values[n // 2]
    return (values[n // 2 - 1] + values[n // 2]) / 2.0


def _crossings(upper_pos, lower_pos, segments):
    pairs = sorted((upper_pos[a], lower_pos[b]) for a, b in segments)
    count = 0
    for i in range(len(pairs)):
        ai, bi = pairs[i]
        for j in range(i + 1, len(pairs)):
            aj, bj = pairs[j]
            if aj > ai and bj < bi:
                count += 1
    return count


def layered_layout(units, ranks, sizes, edges, rankdir="TB", rank_gap=44, node_gap=20,
                   member_gap=16, dummy_size=8, margin=16, iterations=10, centring=0.05):
    """Lay out ``units`` ({unit: [node, ...]}) at ``ranks`` ({unit: int}); ``sizes`` maps a
    node to its (width, height); ``edges`` is a list of (source node, target node)."""
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    horizontal = rankdir in ("LR", "RL")

    def main_size(node):
        return sizes[node][0] if horizontal else sizes[node][1]

    def cross_size(node):
        return sizes[node][1] if horizontal else sizes[node][0]

    unit_of = {m: u for u, members in units.items() for m in members}
    ranks = dict(ranks)
    ucross, umain, offset = {}, {}, {}
    for u, members in units.items():
        total = sum(cross_size(m) for m in members) + member_gap * (len(members) - 1)
        ucross[u], umain[u] = total, max(main_size(m) for m in members)
        pos = -total / 2.0
        for m in members:
            offset[m] = pos + cross_size(m) / 2.0   # member centre relative to the unit's
            pos += cross_size(m) + member_gap
    nranks = max(ranks.values()) + 1 if ranks else 0
    layers = [[] for _ in range(nranks)]
    for u in units:
        layers[ranks[u]].append(u)

    # 1. chains of units for every edge, with dummies on the ranks they cross
    chains, dummies = [], set()
    up, down = defaultdict(list), defaultdict(list)    # unit -> [(neighbour, Δcross)]
    segments = defaultdict(list)                       # upper rank -> [(upper unit, lower unit)]
    for k, (src, dst) in enumerate(edges):
        us, ud = unit_of[src], unit_of[dst]
        chain = [us]
        for r in range(ranks[us] + 1, ranks[ud]):
            dummy = ("dummy", k, r)
            dummies.add(dummy)
            ranks[dummy], ucross[dummy], umain[dummy] = r, dummy_size, 0
            layers[r].append(dummy)
            chain.append(dummy)
        chain.append(ud)
        chains.append(chain)
        for i, (a, b) in enumerate(zip(chain, chain[1:])):
            if ranks[b] != ranks[a] + 1:
                continue
            off_a = offset[src] if i == 0 else 0.0
            off_b = offset[dst] if i == len(chain) - 2 else 0.0
            down[a].append((b, off_b - off_a))
            up[b].append((a, off_a - off_b))
            segments[ranks[a]].append((a, b))

    # 2. order each rank by barycentre sweeps
    def positions():
        return {u: i for layer in layers for i, u in enumerate(layer)}

    def total_crossings(pos):
        return sum(_crossings(pos, pos, segments[r]) for r in range(nranks - 1))

    pos = positions()
    best, best_count = [list(layer) for layer in layers], total_crossings(pos)
    for it in range(iterations):
        sweep = range(1, nranks) if it % 2 == 0 else range(nranks - 2, -1, -1)
        neighbours = up if it % 2 == 0 else down
        for r in sweep:
            def key(u, r=r):
                ns = [pos[n] for n, _ in neighbours[u]]
                return (sum(ns) / len(ns) if ns else pos[u], pos[u])
            layers[r].sort(key=key)
            for i, u in enumerate(layers[r]):
                pos[u] = i
        count = total_crossings(pos)
        if count < best_count:
            best, best_count = [list(layer) for layer in layers], count
        if best_count == 0:
            break
    layers = best

    # 3. cross-axis coordinates
    def gap(a, b):
        return node_gap if a not in dummies and b not in dummies else node_gap / 3.0

    center = {}
    for layer in layers:
        x = 0.0
        for i, u in enumerate(layer):
            if i:
                x += (ucross[layer[i - 1]] + ucross[u]) / 2.0 + gap(layer[i - 1], u)
            center[u] = x
        for u in layer:
            center[u] -= x / 2.0

    def place(layer, desired):
        offs = [0.0]
        for i in range(1, len(layer)):
            a, b = layer[i - 1], layer[i]
            offs.append(offs[-1] + (ucross[a] + ucross[b]) / 2.0 + gap(a, b))
        weights = [0.3 if u in dummies else 1.0 for u in layer]
        fitted = _pav([d - o for d, o in zip(desired, offs)], weights)
        for u, y, o in zip(layer, fitted, offs):
            center[u] = y + o

    def desired_for(u, which, pull):
        wanted = []
        for table in which:
            wanted.extend(center[n] + delta for n, delta in table[u])
        return (1.0 - pull) * (_median(wanted) if wanted else center[u])

    # a weak pull towards the axis keeps long nets from drifting sideways rank after rank;
    # the last pass aligns each node with its neighbours only
    passes = [(range(1, nranks), (up,), centring), (range(nranks - 2, -1, -1), (down,), centring)]
    passes = passes * 4 + [(range(nranks), (up, down), 0.0)]
    for order, which, pull in passes:
        for r in order:
            place(layers[r], [desired_for(u, which, pull) for u in layers[r]])

    # 4. main-axis coordinates; then pixel geometry
    band = [max((umain[u] for u in layer), default=0) for layer in layers]
    start, acc = [], float(margin)
    for r in range(nranks):
        start.append(acc)
        acc += band[r] + rank_gap
    main_extent = acc - rank_gap + margin
    lo = min((center[u] - ucross[u] / 2.0 for u in center), default=0.0)
    hi = max((center[u] + ucross[u] / 2.0 for u in center), default=0.0)
    shift = margin - lo
    cross_extent = hi - lo + 2 * margin

    def to_xy(cross, main):
        cross += shift
        if rankdir == "TB":
            return (cross, main)
        if rankdir == "BT":
            return (cross, main_extent - main)
        if rankdir == "LR":
            return (main, cross)
        return (main_extent - main, cross)

    node_center = {}
    for u, members in units.items():
        mid = start[ranks[u]] + band[ranks[u]] / 2.0
        for m in members:
            node_center[m] = (center[u] + offset[m], mid)
    boxes = {}
    for node, (c, m) in node_center.items():
        x, y = to_xy(c, m)
        w, h = sizes[node]
        boxes[node] = (x - w / 2.0, y - h / 2.0, w, h)

    # ports: spread the edges leaving (entering) a node over its side, ordered by direction
    def next_cross(chain, step):
        unit = chain[step]
        return center[unit] if unit in dummies else None

    out_edges, in_edges = defaultdict(list), defaultdict(list)
    for k, (src, dst) in enumerate(edges):
        chain = chains[k]
        toward_dst = next_cross(chain, 1) if len(chain) > 2 else node_center[dst][0]
        toward_src = next_cross(chain, -2) if len(chain) > 2 else node_center[src][0]
        out_edges[src].append((toward_dst, k))
        in_edges[dst].append((toward_src, k))

    def ports(table):
        result = {}
        for node, items in table.items():
            items.sort()
            n = len(items)
            spread = min(cross_size(node) * 0.6, 12.0 * (n - 1))
            for i, (_, k) in enumerate(items):
                result[k] = -spread / 2.0 + (spread * i / (n - 1) if n > 1 else 0.0)
        return result

    out_port, in_port = ports(out_edges), ports(in_edges)
    polylines = []
    for k, (src, dst) in enumerate(edges):
        chain = chains[k]
        sc, sm = node_center[src]
        dc, dm = node_center[dst]
        points = [(sc + out_port[k], sm + main_size(src) / 2.0)]
        for unit in chain[1:-1]:
            r = ranks[unit]
            points.append((center[unit], start[r]))
            points.append((center[unit], start[r] + band[r]))
        points.append((dc + in_port[k], dm - main_size(dst) / 2.0))
        polylines.append([to_xy(c, m) for c, m in points])
    links = []
    for u, members in units.items():
        for a, b in zip(members, members[1:]):
            ac, am = node_center[a]
            bc, _ = node_center[b]
            links.append((to_xy(ac + cross_size(a) / 2.0, am), to_xy(bc - cross_size(b) / 2.0, am)))
    width, height = ((main_extent, cross_extent) if horizontal else (cross_extent, main_extent))
    return Layout(boxes, polylines, links, int(round(width)), int(round(height)))
