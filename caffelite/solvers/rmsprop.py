"""RMSProp: H = d·H + (1−d)·g²; w -= lr·g/(sqrt(H) + delta). Momentum must be 0."""
from .solver import Solver


class RMSPropSolver(Solver):
    type = "RMSProp"

    def check_rule_params(self):
        p = self.param
        if p.momentum != 0:
            raise self._fail("momentum cannot be used with RMSProp (set momentum: 0)")
        if not 0 <= p.rms_decay < 1:
            raise self._fail(f"rms_decay must be in [0, 1), got {p.rms_decay}")

    def compute_update_value(self, i, blob, rate):
        xp = blob.xp
        d = self.param.rms_decay
        h = self.history[i]
        g = blob.diff
        h *= d
        h += (1 - d) * g * g
        blob.diff[...] = self.local_rate(i, rate) * g / (xp.sqrt(h) + self.param.delta)
