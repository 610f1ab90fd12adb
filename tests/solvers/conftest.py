import textwrap

import pytest

from solver_helpers import NET, batch


@pytest.fixture
def make_solver(tmp_path):
    import caffelite as caffe

    def make(extra="", net=NET, feed=True):
        (tmp_path / "net.prototxt").write_text(net)
        extra = textwrap.dedent(extra)
        prefix = "" if "snapshot_prefix" in extra else \
            f'snapshot_prefix: "{tmp_path / "snap"}"\n'
        text = f'net: "{tmp_path / "net.prototxt"}"\nrandom_seed: 5\n' + prefix + extra
        (tmp_path / "solver.prototxt").write_text(text)
        solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
        if feed:
            def on_start():
                x, y = batch(solver.iter)
                solver.net.blobs["data"].data[...] = x
                solver.net.blobs["label"].data[...] = y
            solver.add_callback(on_start, lambda: None)
        return solver
    return make
