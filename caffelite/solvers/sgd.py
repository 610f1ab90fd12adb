"""SGD with momentum: V = momentum·V + lr·g; w -= V."""
from .solver import Solver


class SGDSolver(Solver):
    type = "SGD"

    def compute_update_value(self, i, blob, rate):
        # In place, same arithmetic as Caffe's axpby: V = lr*g + momentum*V; diff = V.
        v, g = self.history[i], blob.diff
        g *= self.local_rate(i, rate)
        v *= self.param.momentum
        v += g
        g[...] = v
