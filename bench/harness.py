"""Shared plumbing for the bench scripts: timers, percentiles, memory, tables, JSON results.

Every script prints its tables and writes one JSON file to ``bench/results/``. Results carry
the machine and the load average at the start, because these machines are shared and a busy
neighbour shows up in the tail latencies.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"  # git-ignored: real embeddings, built indexes, big synthetic files


def offline_env() -> None:
    """What the CLI sets at its edge: no hub, no tokenizer thread pools fighting over 2 cores."""
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                        ("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        os.environ.setdefault(name, value)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call."""
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean / max in milliseconds (numpy's linear-interpolation percentiles)."""
    ms = np.asarray(seconds, dtype=float) * 1000
    return {"n": int(len(ms)), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3), "mean_ms": round(float(ms.mean()), 3),
            "max_ms": round(float(ms.max()), 3)}


def machine() -> dict[str, Any]:
    import faiss

    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "faiss": faiss.__version__, "numpy": np.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "faiss_omp_threads": faiss.omp_get_max_threads()}


def table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table with right-aligned numbers, for the terminal and the README."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return "" if value is None else str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
               for c in columns]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(cells, widths, numeric, strict=True))
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(columns), rule, *(line(r) for r in body)])


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` atomically (a half-written result is never committed)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    body = {"benchmark": name, "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), **payload}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
