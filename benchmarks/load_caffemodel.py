"""Loading speed and memory of a big caffemodel: a VGG-16-sized file (about 550 MB) written
by caffelite itself, loaded into a fresh net, against merely reading the file's bytes.

    python benchmarks/load_caffemodel.py [--model models/vgg16/deploy.prototxt] [--keep PATH]

Each measurement runs in its own process so peak RSS is its own.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


class PeakSampler:
    """Samples this process's resident set every millisecond while active."""

    def __enter__(self):
        import threading
        self.peak, self.stop = rss_mb(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self.stop.wait(0.001):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss_mb())


def child(mode, model, weights):
    sys.path.insert(0, REPO)
    import caffelite as caffe
    if mode == "read":
        base = rss_mb()
        with PeakSampler() as s:
            t0 = time.perf_counter()
            with open(weights, "rb") as f:
                data = f.read()
            dt = time.perf_counter() - t0
        print(f"{dt} {s.peak - base} {len(data)}")
        return
    net = caffe.Net(model, caffe.TEST)   # fillers run here; not part of the timing
    base = rss_mb()
    with PeakSampler() as s:
        t0 = time.perf_counter()
        net.copy_from(weights)
        dt = time.perf_counter() - t0
    # the net's own parameters are resident before loading starts
    print(f"{dt} {s.peak - base} {base}")


def drop_cache_hint(path):
    try:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    except (AttributeError, OSError):
        pass


def run_child(mode, model, weights):
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--model", model,
                          "--weights", weights], check=True, capture_output=True, text=True)
    dt, rss, base = out.stdout.split()
    return float(dt), float(rss), float(base)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=os.path.join(REPO, "models", "vgg16", "deploy.prototxt"))
    ap.add_argument("--weights", default="")
    ap.add_argument("--child", default="")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.model, args.weights)
    sys.path.insert(0, REPO)
    import caffelite as caffe
    tmpdir = tempfile.mkdtemp()
    weights = args.weights or os.path.join(tmpdir, "big.caffemodel")
    if not args.weights:
        caffe.set_random_seed(0)
        caffe.Net(args.model, caffe.TEST).save(weights)
    size_mb = os.path.getsize(weights) / 2 ** 20
    rows = {}
    for mode in ("read", "load"):
        times, rss, base = [], 0.0, 0.0
        for _ in range(args.repeat):
            drop_cache_hint(weights)
            dt, r, b = run_child(mode, args.model, weights)
            times.append(dt)
            rss, base = max(rss, r), max(base, b)
        rows[mode] = (min(times), rss, base)
    read_t, read_rss, _ = rows["read"]
    load_t, load_rss, net_rss = rows["load"]
    print(f"caffemodel: {size_mb:.0f} MB ({os.path.basename(args.model)})")
    print(f"| step | time (s) | MB/s | extra peak RSS while loading (MB) |")
    print(f"|---|---|---|---|")
    print(f"| read the file's bytes | {read_t:.2f} | {size_mb / read_t:.0f} | {read_rss:.0f} |")
    print(f"| caffelite copy_from | {load_t:.2f} | {size_mb / load_t:.0f} | {load_rss:.0f} |")
    total = net_rss + load_rss
    print(f"load speed / raw read speed: {read_t / load_t:.2f} (target >= 0.5)")
    print(f"process peak RSS while loading: {total:.0f} MB (the built net: {net_rss:.0f} MB) = "
          f"{total / size_mb:.2f} x the file size (target <= 2)")
    if not args.weights:
        os.remove(weights)


if __name__ == "__main__":
    main()
