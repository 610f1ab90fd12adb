"""Every lr_policy against its formula (reference §4.4)."""
import math

import pytest

from caffelite.errors import CaffeliteError


class FakeSolver:
    def __init__(self, text):
        from google.protobuf import text_format
        from caffelite.proto import caffe_pb2
        import logging
        self.param = text_format.Parse(text, caffe_pb2.SolverParameter())
        self.iter, self.current_step = 0, 0
        self.log = logging.getLogger("caffelite")


@pytest.mark.parametrize("text, formula", [
    ('lr_policy: "fixed" base_lr: 0.1', lambda it: 0.1),
    ('lr_policy: "step" base_lr: 0.1 gamma: 0.5 stepsize: 3', lambda it: 0.1 * 0.5 ** (it // 3)),
    ('lr_policy: "exp" base_lr: 0.1 gamma: 0.9', lambda it: 0.1 * 0.9 ** it),
    ('lr_policy: "inv" base_lr: 0.01 gamma: 0.0001 power: 0.75',
     lambda it: 0.01 * (1 + 0.0001 * it) ** -0.75),
    ('lr_policy: "poly" base_lr: 0.1 power: 2 max_iter: 20', lambda it: 0.1 * (1 - it / 20) ** 2),
    ('lr_policy: "sigmoid" base_lr: 0.1 gamma: -0.5 stepsize: 5',
     lambda it: 0.1 / (1 + math.exp(0.5 * (it - 5)))),
])
def test_policy_formulas(text, formula):
    from caffelite.solvers.lr_policy import learning_rate
    s = FakeSolver(text)
    for it in range(0, 12):
        s.iter = it
        assert learning_rate(s) == pytest.approx(formula(it), rel=1e-6)


def test_multistep_advances_at_most_one_step_per_call():
    from caffelite.solvers.lr_policy import learning_rate
    s = FakeSolver('lr_policy: "multistep" base_lr: 1 gamma: 0.1 stepvalue: 2 stepvalue: 3')
    s.iter = 10  # past both step values: each call advances once
    assert learning_rate(s) == pytest.approx(0.1)
    assert learning_rate(s) == pytest.approx(0.01)
    assert learning_rate(s) == pytest.approx(0.01) and s.current_step == 2


@pytest.mark.parametrize("text, match", [
    ('lr_policy: "bogus"', "unknown lr_policy 'bogus'"),
    ('lr_policy: "step"', "stepsize > 0"),
    ('lr_policy: "sigmoid" stepsize: 0', "stepsize > 0"),
])
def test_bad_policies(text, match):
    from caffelite.solvers.lr_policy import check_policy
    with pytest.raises(CaffeliteError, match=match):
        check_policy(FakeSolver(text).param, "s.prototxt")


def test_poly_past_max_iter_is_nan_as_cs_pow_gives():
    # (1 - iter/max_iter) < 0 to a fractional power: C's pow gives NaN, not a complex number
    from caffelite.solvers.lr_policy import learning_rate
    s = FakeSolver('lr_policy: "poly" base_lr: 0.1 power: 0.5 max_iter: 3')
    s.iter = 5
    assert math.isnan(learning_rate(s))
    s.iter = 3
    assert learning_rate(s) == 0.0
