"""AdaGrad: H += g²; w -= lr·g/(sqrt(H) + delta). Momentum must be 0."""
from .solver import Solver


class AdaGradSolver(Solver):
    type = "AdaGrad"

    def check_rule_params(self):
        if self.param.momentum != 0:
            raise self._fail("momentum cannot be used with AdaGrad (set momentum: 0)")

    def compute_update_value(self, i, blob, rate):
        xp = blob.xp
        h = self.history[i]
        g = blob.diff
        h += g * g
        blob.diff[...] = self.local_rate(i, rate) * g / (xp.sqrt(h) + self.param.delta)
