"""Nesterov: V' = V; V = momentum·V + lr·g; w -= (1+momentum)·V − momentum·V'."""
from .sgd import SGDSolver


class NesterovSolver(SGDSolver):
    type = "Nesterov"

    def compute_update_value(self, i, blob, rate):
        m = self.param.momentum
        v = self.history[i]
        previous = v.copy()
        v *= m
        v += self.local_rate(i, rate) * blob.diff
        blob.diff[...] = (1 + m) * v - m * previous
