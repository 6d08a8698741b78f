"""mAP with its p-values: cellbench's `retrieval_map` against copairs itself, time and memory.

    flock /tmp/cellbench-bench.lock python tests/benchmarks/bench_retrieval.py \
        [--cells 10000 30000 100000] [--dims 64] [--null-size 1000] [--timeout 300] [--max-gb 16]

Each run is a fresh child process (one implementation, one size) on the same synthetic
embeddings: 12 classes of unequal sizes (the largest 4x the smallest), Gaussian clusters.
Both compute per-query AP (cosine, positives = same class, negatives = other classes), the
per-class mAP with permutation p-values (``null_size`` random rankings per configuration,
the report's MAP_NULL_SIZE by default) and BH q-values. Printed per run: wall seconds and
the child's peak resident memory (``ru_maxrss``, which includes the interpreter and its
imports: about 150-250 MB before any work). A run past ``--timeout`` is stopped, and one past
``--max-gb`` of address space fails with a MemoryError; both are shown as such. copairs'
cache of null distributions goes to a temporary folder (by default it would write under the
home directory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    limit = int(float(sys.argv[6]) * 2**30)  # address space: a MemoryError, not the OOM killer
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np, pandas as pd
    implementation, n, dims, null_size, cache = sys.argv[1:6]
    n, dims, null_size = int(n), int(dims), int(null_size)
    rng = np.random.default_rng(0)
    weights = np.linspace(1, 4, 12); weights /= weights.sum()
    labels = rng.choice([f"class{k:02d}" for k in range(12)], size=n, p=weights)
    centres = {c: rng.normal(size=dims) for c in np.unique(labels)}
    x = np.stack([centres[c] for c in labels]) + rng.normal(scale=2.0, size=(n, dims))
    started = time.perf_counter()
    if implementation == "cellbench":
        from cellbench.evaluate.retrieval import retrieval_map
        _, classes = retrieval_map(x, labels, null_size=null_size, seed=0)
    else:
        from copairs.map import average_precision, mean_average_precision
        ap = average_precision(pd.DataFrame({"label": labels}), x, pos_sameby=["label"],
                               pos_diffby=[], neg_sameby=[], neg_diffby=["label"],
                               progress_bar=False)
        classes = mean_average_precision(ap, sameby=["label"], null_size=null_size,
                                         threshold=0.05, seed=0, progress_bar=False,
                                         cache_dir=cache)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb,
                      "map": float(classes["mean_average_precision"].mean())}))
    """
)


def run_one(implementation: str, cells: int, args: argparse.Namespace, cache: Path) -> dict:
    """One child run; ``{"timeout": True}`` when it ran past the limit."""
    command = [sys.executable, "-c", CHILD, implementation, str(cells), str(args.dims)]
    command += [str(args.null_size), str(cache), str(args.max_gb)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, cwd=REPO
        )
    except subprocess.TimeoutExpired:
        return {"timeout": True}
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr else "failed"
        return {"error": last[:80]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print one table row per size and implementation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--null-size", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--max-gb", type=float, default=16, help="address space of a child")
    args = parser.parse_args()
    print(f"{args.dims} dims, 12 classes, null_size {args.null_size}, timeout {args.timeout:.0f} s")
    print("| cells | implementation | seconds | peak MB | mean mAP |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as cache:
        for cells in args.cells:
            for implementation in ("cellbench", "copairs"):
                result = run_one(implementation, cells, args, Path(cache))
                if result.get("timeout"):
                    print(f"| {cells:,} | {implementation} | > {args.timeout:.0f} (stopped) | | |")
                elif "error" in result:
                    print(f"| {cells:,} | {implementation} | error: {result['error']} | | |")
                else:
                    print(
                        f"| {cells:,} | {implementation} | {result['seconds']:.1f} | "
                        f"{result['peak_mb']:,.0f} | {result['map']:.4f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
