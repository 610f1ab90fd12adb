"""Background prefetch: a daemon thread fills a queue of ready batches (Caffe's
BasePrefetchingDataLayer), and the base class the prefetching data layers share.

The thread runs ``load_batch()`` (a callable that must not hold the layer, so that a layer
dropped by its net is collected and its thread stopped) and puts each result (a tuple of
host arrays, one per top) in a queue of ``prefetch`` batches (DataParameter.prefetch,
default 4). An exception in the thread is kept and raised again in the thread that calls
Forward, with the layer named, on that call and every later one, so a failing source never
leaves the caller waiting.
"""
import functools
import queue
import threading
import weakref

from .. import backend
from ..errors import CaffeliteError, LayerError, layer_error
from ..layer import Layer

_POLL_S = 0.1


class Prefetcher:
    def __init__(self, load_batch, depth=4, name="data"):
        self._queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._failure = None
        self._thread = threading.Thread(
            target=_run, args=(load_batch, self._queue, self._stop),
            name=f"caffelite-prefetch-{name}", daemon=True)
        self._thread.start()

    def next_batch(self):
        """The next batch in order; raises the loader's exception if it failed."""
        if self._failure is not None:
            raise self._failure
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._failure = CaffeliteError("the prefetch thread has stopped")
                    raise self._failure
                continue
            if isinstance(item, _Failure):
                self._failure = item.error
                raise self._failure
            return item

    def stop(self, timeout=5.0):
        """Ask the thread to finish and wait for it (it is a daemon, so exit never hangs)."""
        self._stop.set()
        while True:  # unblock a put() waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self):
        return self._thread.is_alive()


class _Failure:
    def __init__(self, error):
        self.error = error


def _put(q, stop, item):
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _run(load_batch, q, stop):
    while not stop.is_set():
        try:
            batch = load_batch()
        except BaseException as e:  # noqa: BLE001 - every failure must reach the caller
            _put(q, stop, _Failure(e))
            return
        if not _put(q, stop, batch):
            return


class BasePrefetchingDataLayer(Layer):
    """Bottomless layer whose Forward copies the next prefetched batch into its tops.

    Subclasses read their params in ``setup``, shape the tops, and call
    ``start_prefetch(load_batch)``. Each batch is a tuple of host arrays, one per top;
    Forward reshapes every top to its array (so a batch may change shape, as in Caffe)."""
    exact_num_bottom = 0
    _prefetcher = None

    @property
    def error_fn(self):
        """Like ``self.error`` but holding only the LayerParameter: safe to hand to the
        prefetch thread's objects without keeping the layer alive."""
        return functools.partial(layer_error, self.layer_param)

    def start_prefetch(self, load_batch):
        self.stop_prefetch()
        depth = self.layer_param.data_param.prefetch
        self._prefetcher = Prefetcher(load_batch, depth, self.name)
        self._finalizer = weakref.finalize(self, self._prefetcher.stop)

    def stop_prefetch(self):
        if self._prefetcher is not None:
            self._finalizer.detach()
            self._prefetcher.stop()
            self._prefetcher = None

    def next_batch(self):
        if self._prefetcher is None:
            raise self.error("data layer used before setup")
        try:
            return self._prefetcher.next_batch()
        except LayerError:
            raise
        except CaffeliteError as e:
            raise self.error(str(e)) from e
        except Exception as e:  # noqa: BLE001
            raise self.error(f"prefetch thread failed: {type(e).__name__}: {e}") from e

    def reshape(self, bottom, top):
        pass  # the tops take each batch's shape in forward

    def forward(self, bottom, top):
        for t, arr in zip(top, self.next_batch()):
            t.reshape(arr.shape)
            t.data[...] = backend.to_device(arr, backend.get_array_module(t.data))

    def backward(self, top, propagate_down, bottom):
        pass
