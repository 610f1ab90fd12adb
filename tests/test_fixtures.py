"""Replay every ``check: net`` case made by real Caffe (layers/ and nets/) and compare
forward outputs, bottom and param diffs, kept layers, blob order and output order; and the
legacy V0/V1 ``variants`` cases (every prototxt/caffemodel vintage pair gives the same
numbers)."""
import json

import pytest

import caffelite as caffe
from caffelite.testing.fixtures import (replay_mean_case, replay_net_case, replay_restore_case,
                                       replay_solver_case, replay_variants_case)

from caffelite.testing.data_fixtures import REPLAY_DATA
from fixture_paths import find_fixtures_dir

ROOT = find_fixtures_dir()


def _cases():
    if ROOT is None:
        return []
    cases = []
    for kind in ("layers", "nets", "legacy", "formats", "solvers", "data"):
        for case_dir in sorted((ROOT / kind).iterdir()):
            meta = json.loads((case_dir / "case.json").read_text())
            if meta.get("check") in REPLAY:
                cases.append(pytest.param(case_dir, id=f"{kind}/{case_dir.name}"))
    return cases


REPLAY = {"net": replay_net_case, "variants": replay_variants_case,
          "solver": replay_solver_case, "restore": replay_restore_case, "mean": replay_mean_case,
          **REPLAY_DATA}


@pytest.mark.parametrize("case_dir", _cases())
def test_caffe_fixture(case_dir):
    meta = json.loads((case_dir / "case.json").read_text())
    missing = sorted(set(meta.get("layer_types", [])) - set(caffe.layer_type_list()))
    if missing:
        pytest.skip(f"needs layer types not in caffelite yet: {', '.join(missing)}")
    REPLAY[meta["check"]](case_dir)
