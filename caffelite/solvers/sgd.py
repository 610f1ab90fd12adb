"""SGD with momentum: V = momentum·V + lr·g; w -= V."""
from .solver import Solver


class SGDSolver(Solver):
    type = "SGD"

    def compute_update_value(self, i, blob, rate):
        v = self.history[i]
        v *= self.param.momentum
        v += self.local_rate(i, rate) * blob.diff
        blob.diff[...] = v
