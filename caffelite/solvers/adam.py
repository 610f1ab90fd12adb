"""Adam (β1 = momentum, β2 = momentum2, ε = delta), t = iter + 1:
m = β1·m + (1−β1)g; v = β2·v + (1−β2)g²; w -= lr·sqrt(1−β2^t)/(1−β1^t)·m/(sqrt(v)+ε).
History holds the m block, then the v block."""
import math

from .solver import Solver


class AdamSolver(Solver):
    type = "Adam"
    history_blocks = 2

    def compute_update_value(self, i, blob, rate):
        xp = blob.xp
        b1, b2 = self.param.momentum, self.param.momentum2
        t = self.iter + 1
        correction = math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = self.history[i]
        v = self.history[i + len(self.net.learnable_params)]
        g = blob.diff
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        blob.diff[...] = self.local_rate(i, rate) * correction * m / (xp.sqrt(v) +
                                                                      self.param.delta)
