"""Caffe's rules that rewrite a NetParameter before layers are built: state filtering
(include/exclude) and automatic Split insertion for blobs with several consumers."""
from .errors import NetError


def state_meets_rule(state, rule):
    """True when NetState ``state`` satisfies NetStateRule ``rule`` (every set condition)."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    if any(s in stages for s in rule.not_stage):
        return False
    return True


def layer_included(layer_param, state):
    if layer_param.include and layer_param.exclude:
        raise NetError(f"layer '{layer_param.name}' (type {layer_param.type}) specifies both "
                       f"include and exclude rules; use one or the other")
    if layer_param.include:
        return any(state_meets_rule(state, r) for r in layer_param.include)
    return not any(state_meets_rule(state, r) for r in layer_param.exclude)


def filter_net(net_param):
    """A copy of ``net_param`` keeping the layers its ``state`` includes."""
    filtered = type(net_param)()
    filtered.CopyFrom(net_param)
    del filtered.layer[:]
    for layer_param in net_param.layer:
        if layer_included(layer_param, net_param.state):
            filtered.layer.add().CopyFrom(layer_param)
    return filtered


def split_layer_name(layer_name, blob_name, top_index):
    return f"{blob_name}_{layer_name}_{top_index}_split"


def split_blob_name(layer_name, blob_name, top_index, split_index):
    return f"{split_layer_name(layer_name, blob_name, top_index)}_{split_index}"


def insert_splits(net_param):
    """Caffe's InsertSplits: every top version used more than once (counting an explicit
    non-zero loss weight as a use) gets a Split layer right after its producer."""
    last_top = {}            # blob name -> (layer index, top index) of its latest version
    source_of_bottom = {}    # (layer, bottom index) -> (layer, top index)
    uses = {}                # (layer, top index) -> number of uses
    loss_weight = {}
    for i, lp in enumerate(net_param.layer):
        for j, name in enumerate(lp.bottom):
            if name not in last_top:
                raise NetError(f"layer '{lp.name}' (type {lp.type}): Unknown bottom blob "
                               f"'{name}' (layer '{lp.name}', bottom index {j}); no earlier "
                               f"layer produces it")
            src = last_top[name]
            source_of_bottom[(i, j)] = src
            uses[src] = uses.get(src, 0) + 1
        for j, name in enumerate(lp.top):
            last_top[name] = (i, j)
        for j in range(min(len(lp.loss_weight), len(lp.top))):
            loss_weight[(i, j)] = lp.loss_weight[j]
            if lp.loss_weight[j]:
                uses[(i, j)] = uses.get((i, j), 0) + 1

    out = type(net_param)()
    out.CopyFrom(net_param)
    del out.layer[:]
    next_split = {}
    for i, lp in enumerate(net_param.layer):
        new_lp = out.layer.add()
        new_lp.CopyFrom(lp)
        for j in range(len(new_lp.bottom)):
            src = source_of_bottom[(i, j)]
            if uses.get(src, 0) > 1:
                producer = net_param.layer[src[0]].name
                k = next_split.get(src, 0)
                next_split[src] = k + 1
                new_lp.bottom[j] = split_blob_name(producer, new_lp.bottom[j], src[1], k)
        for j, name in enumerate(lp.top):
            count = uses.get((i, j), 0)
            if count <= 1:
                continue
            weight = loss_weight.get((i, j), 0.0)
            split = out.layer.add()
            split.name = split_layer_name(lp.name, name, j)
            split.type = "Split"
            split.bottom.append(name)
            for k in range(count):
                split.top.append(split_blob_name(lp.name, name, j, k))
                if weight:
                    split.loss_weight.append(weight if k == 0 else 0.0)
            if weight:
                del new_lp.loss_weight[:]
                next_split[(i, j)] = next_split.get((i, j), 0) + 1
    return out
