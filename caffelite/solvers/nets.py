"""The solver's train and test nets, built from the SolverParameter as Caffe's
InitTrainNet and InitTestNets (reference §3.1, §4)."""
import os

from ..net import Net, TEST, TRAIN


def _net_path(solver, path):
    return path if os.path.isabs(path) else os.path.join(solver.base_dir, path)


def build_train_net(solver):
    """The train net: exactly one of net, net_param, train_net, train_net_param; its state is
    TRAIN merged with the file's state and the solver's train_state."""
    from ..formats.netfile import read_net
    from ..proto import caffe_pb2
    p = solver.param
    given = [f for f in ("train_net_param", "train_net", "net_param", "net") if p.HasField(f)]
    if not given:
        raise solver._fail("no train net: set one of net, net_param, train_net, "
                           "train_net_param")
    if len(given) > 1:
        raise solver._fail(f"more than one train net given ({', '.join(given)}); keep one")
    field = given[0]
    if field.endswith("_param"):
        net_param = caffe_pb2.NetParameter()
        net_param.CopyFrom(getattr(p, field))
    else:
        net_param = read_net(_net_path(solver, getattr(p, field)))
    state = caffe_pb2.NetState(phase=TRAIN)
    state.MergeFrom(net_param.state)
    state.MergeFrom(p.train_state)
    net_param.state.CopyFrom(state)
    return Net(net_param)


def build_test_nets(solver):
    """One test net per test_iter: test_net_param entries, then test_net files, then copies
    of the generic net; each in TEST merged with its test_state."""
    from ..formats.netfile import read_net
    from ..proto import caffe_pb2
    p = solver.param
    generic = int(p.HasField("net_param")) + int(p.HasField("net"))
    if generic > 1:
        raise solver._fail("both net and net_param are set; keep one")
    n_specific = len(p.test_net_param) + len(p.test_net)
    if generic:
        if len(p.test_iter) < n_specific:
            raise solver._fail("test_iter must be given once for each test net")
    elif len(p.test_iter) != n_specific:
        raise solver._fail(f"test_iter must be given once for each test net "
                         f"({n_specific} test nets, {len(p.test_iter)} test_iter)")
    n_instances = len(p.test_iter)
    if len(p.test_state) and len(p.test_state) != n_instances:
        raise solver._fail("test_state must be unspecified or given once per test net")
    if n_instances and p.test_interval <= 0:
        raise solver._fail("test_iter is set but test_interval is not positive; set "
                         "test_interval (or remove test_iter)")
    params = [caffe_pb2.NetParameter() for _ in range(n_instances)]
    i = 0
    for tp in p.test_net_param:
        params[i].CopyFrom(tp)
        i += 1
    for path in p.test_net:
        params[i].CopyFrom(read_net(_net_path(solver, path)))
        i += 1
    while i < n_instances:
        if p.HasField("net_param"):
            params[i].CopyFrom(p.net_param)
        else:
            params[i].CopyFrom(read_net(_net_path(solver, p.net)))
        i += 1
    nets = []
    for k, net_param in enumerate(params):
        state = caffe_pb2.NetState(phase=TEST)
        state.MergeFrom(net_param.state)
        if len(p.test_state):
            state.MergeFrom(p.test_state[k])
        net_param.state.CopyFrom(state)
        net = Net(net_param)
        net.debug_info = p.debug_info        # Caffe: the solver's setting, not the file's
        nets.append(net)
    return nets
