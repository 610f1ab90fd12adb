"""pycaffe's Python-level Net methods: forward/backward with named blobs, batching helpers."""

import numpy as np

from . import backend
from .errors import CaffeliteError


class NetApiMixin:
    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """Run layers start..end (names, inclusive); return {output name: data view}."""
        blobs = list(blobs or [])
        start_ind = 0 if start is None else self.layer_index(start)
        if end is not None:
            end_ind = self.layer_index(end)
            outputs = set(self.top_names[end] + blobs)
        else:
            end_ind = len(self.layers) - 1
            outputs = set(self.outputs + blobs)
        if kwargs:
            if set(kwargs) != set(self.inputs):
                raise CaffeliteError(f"input blob arguments {sorted(kwargs)} do not match the "
                                     f"net inputs {sorted(self.inputs)}")
            for name, arr in kwargs.items():
                blob = self.blobs[name]
                if np.shape(arr)[0] != blob.shape[0]:
                    raise CaffeliteError(f"input '{name}' has batch size {np.shape(arr)[0]}, "
                                         f"the net expects {blob.shape[0]}")
                blob.data = arr
        self._forward(start_ind, end_ind)
        return {name: self.blobs[name].data for name in outputs}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """Run backward from layer start down to end; return {input name: diff view}."""
        diffs = list(diffs or [])
        start_ind = len(self.layers) - 1 if start is None else self.layer_index(start)
        if end is not None:
            end_ind = self.layer_index(end)
            outputs = set(self.bottom_names[end] + diffs)
        else:
            end_ind = 0
            outputs = set(self.inputs + diffs)
        if kwargs:
            if set(kwargs) != set(self.outputs):
                raise CaffeliteError(f"top diff arguments {sorted(kwargs)} do not match the "
                                     f"net outputs {sorted(self.outputs)}")
            for name, arr in kwargs.items():
                blob = self.blobs[name]
                if np.shape(arr)[0] != blob.shape[0]:
                    raise CaffeliteError(f"diff '{name}' has batch size {np.shape(arr)[0]}, "
                                         f"the net expects {blob.shape[0]}")
                blob.diff = arr
        self._backward(start_ind, end_ind)
        return {name: self.blobs[name].diff for name in outputs}

    def _batch(self, arrays):
        """Split {name: array} into net-sized batches, zero-padding the last one."""
        num = len(next(iter(arrays.values())))
        batch_size = next(iter(self.blobs.values())).shape[0]
        for i in range(0, num - num % batch_size, batch_size):
            yield {name: a[i:i + batch_size] for name, a in arrays.items()}
        remainder = num % batch_size
        if remainder:
            padded = {}
            for name, a in arrays.items():
                pad = np.zeros((batch_size - remainder,) + np.shape(a)[1:], dtype=np.float32)
                padded[name] = np.concatenate([a[-remainder:], pad])
            yield padded

    def forward_all(self, blobs=None, **kwargs):
        """Forward every item of the inputs in batches; returns copies with padding removed."""
        outs = {name: [] for name in set(self.outputs + list(blobs or []))}
        for batch in self._batch(kwargs):
            for name, data in self.forward(blobs=blobs, **batch).items():
                outs[name].extend(backend.asnumpy(data).copy())
        return self._strip(outs, kwargs)

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """forward_all and backward_all together: returns (outputs, input diffs)."""
        outs = {name: [] for name in set(self.outputs + list(blobs or []))}
        grads = {name: [] for name in set(self.inputs + list(diffs or []))}
        fwd_in = {k: v for k, v in kwargs.items() if k in self.inputs}
        bwd_in = {k: v for k, v in kwargs.items() if k in self.outputs}
        fwd_batches = self._batch(fwd_in)
        bwd_batches = self._batch(bwd_in) if bwd_in else iter(lambda: {}, None)
        for fb, bb in zip(fwd_batches, bwd_batches):
            for name, data in self.forward(blobs=blobs, **fb).items():
                outs[name].extend(backend.asnumpy(data).copy())
            for name, diff in self.backward(diffs=diffs, **bb).items():
                grads[name].extend(backend.asnumpy(diff).copy())
        return self._strip(outs, fwd_in), self._strip(grads, fwd_in)

    @staticmethod
    def _strip(collected, inputs):
        result = {name: np.asarray(values) for name, values in collected.items()}
        if not inputs or not result:
            return result
        pad = len(next(iter(result.values()))) - len(next(iter(inputs.values())))
        if pad:
            result = {name: values[:-pad] for name, values in result.items()}
        return result

    def save(self, path):
        from .formats.weights import save_caffemodel
        save_caffemodel(self, path)

    def to_proto(self, write_diff=False):
        from .formats.weights import net_to_proto
        return net_to_proto(self, write_diff)
