"""AdaDelta (ρ = momentum): H = ρH + (1−ρ)g²; u = g·sqrt((U+δ)/(H+δ)); U = ρU + (1−ρ)u²;
w -= lr·u. History holds the H block, then the U block."""
from .solver import Solver


class AdaDeltaSolver(Solver):
    type = "AdaDelta"
    history_blocks = 2

    def compute_update_value(self, i, blob, rate):
        xp = blob.xp
        rho, delta = self.param.momentum, self.param.delta
        h = self.history[i]
        u_hist = self.history[i + len(self.net.learnable_params)]
        g = blob.diff
        h *= rho
        h += (1 - rho) * g * g
        u = g * xp.sqrt((u_hist + delta) / (h + delta))
        u_hist *= rho
        u_hist += (1 - rho) * u * u
        blob.diff[...] = self.local_rate(i, rate) * u
