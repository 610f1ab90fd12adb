"""Solver: Caffe's training loop (Step/Solve), testing, display, snapshots and restore.

Update rules subclass ``Solver`` and override ``compute_update_value`` (and ``history_blocks``
when they keep two histories). Semantics: reference §4.
"""
import logging
import math
import os
import time

import numpy as np

from .. import backend
from ..errors import CaffeliteError
from ..log import g6
from . import lr_policy
from .nets import build_test_nets, build_train_net


class NonFiniteLossError(CaffeliteError):
    """Training produced a NaN or infinite loss; names the iteration and the first bad layer."""


class Solver:
    type = None
    history_blocks = 1           # AdaDelta and Adam keep a second history block

    def __init__(self, param, source="<SolverParameter>"):
        from ..formats.solverfile import read_solver, upgrade_solver
        from ..proto import caffe_pb2
        self.log = logging.getLogger("caffelite")
        if isinstance(param, caffe_pb2.SolverParameter):
            p = caffe_pb2.SolverParameter()
            p.CopyFrom(param)
            upgrade_solver(p, source)
            self.source, self.base_dir = source, os.getcwd()
        else:
            self.source = os.fspath(param)
            p = read_solver(self.source)
            self.base_dir = os.getcwd()
        self.param = p
        self._check_param()
        if p.random_seed >= 0:
            backend.set_random_seed(p.random_seed)
        self.net = build_train_net(self)
        self.test_nets = build_test_nets(self)
        self.iter = 0
        self.current_step = 0
        self.smoothed_loss = 0.0
        self._losses = []
        self._callbacks = []
        self.requested_action = None    # "stop" or "snapshot", set by signal handlers
        self.requested_early_exit = False
        self.history = [self._zeros_like(b) for _ in range(self.history_blocks)
                        for b in self.net.learnable_params]
        for weights in p.weights:
            self._load_weights(weights)
        self._check_snapshot_prefix()

    # -- construction ---------------------------------------------------------------------
    def _fail(self, message):
        return CaffeliteError(f"{self.source}: {message}")

    def _check_param(self):
        p = self.param
        if p.HasField("type") and self.type is not None and p.type != self.type:
            # Caffe's SGDSolver(file), AdamSolver(file), ... never read ``type``
            self.log.warning(f"{self.source}: solver type '{p.type}', but this is a "
                           f"{type(self).__name__}: its {self.type} update rule is used "
                           f"(caffe.get_solver picks the class from the type)")
        lr_policy.check_policy(p, self.source)
        if p.regularization_type not in ("L1", "L2"):
            raise self._fail(f"unknown regularization_type '{p.regularization_type}' "
                             f"(L1 or L2)")
        if p.iter_size < 1:
            raise self._fail(f"iter_size must be at least 1, got {p.iter_size}")
        if p.average_loss < 1:
            raise self._fail(f"average_loss must be at least 1, got {p.average_loss}")
        self.check_rule_params()

    def check_rule_params(self):
        """Update-rule specific checks (e.g. AdaGrad refuses momentum)."""

    def _load_weights(self, weights):
        for path in weights.split(","):
            path = path.strip()
            self.log.info("Finetuning from %s", path)
            self.net.copy_from(path)
            for test_net in self.test_nets:
                test_net.copy_from(path)

    @staticmethod
    def _zeros_like(blob):
        return blob.xp.zeros(blob.shape, dtype=blob.dtype)

    def snapshot_filename(self, extension):
        return f"{self.param.snapshot_prefix}_iter_{self.iter}{extension}"

    def _check_snapshot_prefix(self):
        p = self.param
        if not p.snapshot:
            return
        if not p.snapshot_prefix:
            raise self._fail("snapshot is set but snapshot_prefix is not")
        probe = self.snapshot_filename(".tempfile")
        try:
            with open(probe, "w"):
                pass
            os.remove(probe)
        except OSError as e:
            raise self._fail(f"cannot write to snapshot_prefix '{p.snapshot_prefix}': make "
                             f"sure the directory exists and is writable ({e.strerror})") from None

    # -- pycaffe API ----------------------------------------------------------------------
    def add_callback(self, on_start, on_gradients_ready):
        self._callbacks.append((on_start, on_gradients_ready))

    def share_weights(self, net):
        net.share_with(self.net)

    @property
    def lr(self):
        return lr_policy.learning_rate(self)

    def step(self, iters):
        p = self.param
        start_iter, stop_iter = self.iter, self.iter + iters
        self._losses, self.smoothed_loss = [], 0.0
        timer, iters_last = time.perf_counter(), self.iter
        while self.iter < stop_iter:
            self.net.clear_param_diffs()
            if p.test_interval and self.iter % p.test_interval == 0 and \
                    (self.iter > 0 or p.test_initialization):
                self.test_all()
                if self.requested_early_exit:
                    break
            for on_start, _ in self._callbacks:
                on_start()
            display = p.display and self.iter % p.display == 0
            self.net.debug_info = bool(display and p.debug_info)
            loss = 0.0
            for _ in range(p.iter_size):
                loss += self.net.forward_backward()
            loss /= p.iter_size
            if not math.isfinite(loss):
                raise NonFiniteLossError(self._diagnose_non_finite(loss))
            self._update_smoothed_loss(loss, start_iter)
            if display:
                lapse = time.perf_counter() - timer
                per_s = (self.iter - iters_last) / (lapse or 1.0)
                self.log.info("Iteration %d (%s iter/s, %ss/%d iters), loss = %s", self.iter,
                              g6(per_s), g6(lapse), p.display, g6(self.smoothed_loss))
                timer, iters_last = time.perf_counter(), self.iter
                self._log_outputs(self.net, "Train", None)
            for _, on_gradients_ready in self._callbacks:
                on_gradients_ready()
            self.apply_update(display)
            action, self.requested_action = self.requested_action, None
            if (p.snapshot and self.iter % p.snapshot == 0) or action == "snapshot":
                self.snapshot()
            if action == "stop":
                self.requested_early_exit = True
                break
            if self.on_iteration is not None:
                self.on_iteration(self)

    on_iteration = None    # optional hook (the CLI's progress line)

    def solve(self, resume_file=None):
        p = self.param
        self.log.info("Solving %s", self.net.name)
        self.log.info("Learning Rate Policy: %s", p.lr_policy)
        self.requested_early_exit = False
        if resume_file:
            self.log.info("Restoring previous solver status from %s", resume_file)
            self.restore(resume_file)
        start_iter = self.iter
        self.step(p.max_iter - self.iter)
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            self.snapshot()
        if self.requested_early_exit:
            self.log.info("Optimization stopped early.")
            return
        if p.display and self.iter % p.display == 0:
            loss = self.net.forward_prefilled()
            self._update_smoothed_loss(loss, start_iter)
            self.log.info("Iteration %d, loss = %s", self.iter, g6(self.smoothed_loss))
        if p.test_interval and self.iter % p.test_interval == 0:
            self.test_all()
        self.log.info("Optimization Done.")

    def _update_smoothed_loss(self, loss, start_iter):
        n = self.param.average_loss
        if len(self._losses) < n:
            self._losses.append(loss)
            k = len(self._losses)
            self.smoothed_loss = (self.smoothed_loss * (k - 1) + loss) / k
        else:
            idx = (self.iter - start_iter) % n
            self.smoothed_loss += (loss - self._losses[idx]) / n
            self._losses[idx] = loss

    def _log_outputs(self, net, kind, scores):
        k = 0
        for j, name in enumerate(net.outputs):
            values = backend.asnumpy(net.blobs[name].data).ravel() if scores is None \
                else scores[j]
            weight = net.blob_loss_weights[name]
            for v in values:
                suffix = f" (* {g6(weight)} = {g6(weight * v)} loss)" if weight else ""
                self.log.info("    %s net output #%d: %s = %s%s", kind, k, name, g6(v), suffix)
                k += 1

    def test_all(self):
        for i in range(len(self.test_nets)):
            self.test(i)

    def test(self, i):
        """Caffe's Test: share the train weights, average every output over test_iter."""
        p = self.param
        self.log.info("Iteration %d, Testing net (#%d)", self.iter, i)
        net = self.test_nets[i]
        net.share_with(self.net)
        n = p.test_iter[i]
        sums, loss = None, 0.0
        for _ in range(n):
            if self.requested_action == "stop":
                self.requested_early_exit = True
                self.log.info("Test interrupted.")
                return None
            iter_loss = net.forward_prefilled()
            if p.test_compute_loss:
                loss += iter_loss
            values = [backend.asnumpy(net.blobs[o].data).astype(np.float64).ravel()
                      for o in net.outputs]
            sums = values if sums is None else [s + v for s, v in zip(sums, values)]
        if p.test_compute_loss:
            self.log.info("Test loss: %s", g6(loss / max(n, 1)))
        means = [s / n for s in sums] if sums is not None else []
        self._log_outputs(net, "Test", means)
        return dict(zip(net.outputs, means))

    def _diagnose_non_finite(self, loss):
        for name, layer, tops in zip(self.net._layer_names, self.net.layers,
                                     self.net._top_vecs):
            for t in tops:
                xp = backend.get_array_module(t.data)
                if not bool(xp.isfinite(t.data).all()):
                    return (f"iteration {self.iter}: loss is {loss}; the first non-finite "
                            f"output is top of layer '{name}' (type {layer.type})")
        for name, layer in zip(self.net._layer_names, self.net.layers):
            for j, b in enumerate(layer.blobs):
                xp = backend.get_array_module(b.diff)
                if not bool(xp.isfinite(b.diff).all()) or not bool(xp.isfinite(b.data).all()):
                    return (f"iteration {self.iter}: loss is {loss}; the first non-finite "
                            f"parameter or gradient is blob {j} of layer '{name}' "
                            f"(type {layer.type})")
        return f"iteration {self.iter}: loss is {loss}"

    # -- the update -----------------------------------------------------------------------
    def apply_update(self, display=None):
        """Caffe's ApplyUpdate: rate, clipping, normalise, regularise, update rule, Update,
        then ``iter += 1`` (so pycaffe's ``solver.apply_update()`` counts the update)."""
        p = self.param
        rate = lr_policy.learning_rate(self)
        if display is None:
            display = p.display and self.iter % p.display == 0
        if display:
            self.log.info("Iteration %d, lr = %s", self.iter, g6(rate))
        self._clip_gradients()
        for i, blob in enumerate(self.net.learnable_params):
            self._normalize(blob)
            self._regularize(i, blob)
            self.compute_update_value(i, blob, rate)
        self.net.update()
        self.iter += 1

    def _clip_gradients(self):
        clip = self.param.clip_gradients
        if clip < 0:
            return
        sumsq = sum(float((b.diff.astype(np.float64) ** 2).sum())
                    for b in self.net.learnable_params)
        norm = math.sqrt(sumsq)
        if norm > clip:
            scale = clip / norm
            self.log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by "
                          "scale factor %s", g6(norm), g6(clip), g6(scale))
            for b in self.net.learnable_params:
                b.diff[...] *= scale

    def _normalize(self, blob):
        if self.param.iter_size > 1:
            blob.diff[...] *= 1.0 / self.param.iter_size

    def _regularize(self, i, blob):
        decay = self.param.weight_decay * self.net.params_weight_decay[i]
        if not decay:
            return
        if self.param.regularization_type == "L2":
            backend.axpy(decay, blob.data, blob.diff)
        else:
            blob.diff[...] += decay * blob.xp.sign(blob.data)

    def local_rate(self, i, rate):
        return rate * self.net.params_lr[i]

    def compute_update_value(self, i, blob, rate):
        raise NotImplementedError

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self):
        from . import state
        return state.snapshot(self)

    def restore(self, state_file):
        from . import state
        state.restore(self, state_file)
