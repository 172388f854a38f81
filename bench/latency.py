"""Latency on the project corpus with the real model: cold start, warm search/ask, bare baseline,
for the ONNX encoder (the default) beside the sentence-transformers reference, in the same run.

    python bench/latency.py                 # 300 questions per mode, 5 cold starts per encoder
    python bench/latency.py --questions 200 --cold-starts 3

Warm latency is measured in one process holding the real embedder and the built index. For
every question the operations run back to back in a shuffled order, so a busy neighbour on the
machine slows all of them alike and the ratios stay fair:

- ``baseline``: encode the question (ONNX), search a bare ``faiss.IndexFlatIP`` of the same
  vectors; nothing else (no validation, BM25, store lookups, fusion or hit objects),
- ``baseline, sentence-transformers``: the same with the reference encoder,
- ``dense``, ``bm25``, ``hybrid``: ``Assistant.search`` in each mode, k=5,
- ``ask``: ``Assistant.ask`` (retrieve, then compose the quoted answer), when it exists.

Cold start is the wall time from launching ``rag search`` and ``rag ask`` to their exit with the
answer printed, against an already built index, with each encoder (``RAG_ENCODER``); runs
alternate between the encoders so a busy neighbour slows both alike. Each process's own peak RSS
comes from GNU time (``/usr/bin/time``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpora import PROJECT_CORPUS, latency_questions
from harness import CACHE_DIR, offline_env, peak_rss_mb, summary_ms, table, write_result

SEED = 11
ENCODERS = ("onnx", "sentence-transformers")
GNU_TIME = "/usr/bin/time"  # Debian package `time`

# A child that reports where a cold start spends its time (imports, model, index, first query).
STAGES = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from rag.assistant import open_assistant
from rag.embedding import load_embedder
from rag.settings import Settings
t1 = time.perf_counter()
from pathlib import Path
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]))
embedder = load_embedder(settings)
t2 = time.perf_counter()
session, _ = open_assistant(settings, embedder)
t3 = time.perf_counter()
session.search(sys.argv[3])
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "model_load_s": t2 - t1, "index_open_s": t3 - t2, "first_search_s": t4 - t3,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def rag_command() -> str:
    return str(Path(sys.executable).with_name("rag"))


def _run_child(argv: list[str], encoder: str) -> tuple[float, float, str, str]:
    """(wall seconds, peak RSS MB, stdout, stderr) of one process run to its exit.

    The peak RSS comes from GNU time, which forks the command itself: a child forked from this
    process would report this process's larger peak, which Linux carries across fork and exec.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        began = time.perf_counter()
        done = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name, *argv], stdout=out, stderr=err,
                              env={**os.environ, "RAG_ENCODER": encoder})
        seconds = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        peak_kb = int(rss.read().split()[-1]) if done.returncode == 0 else 0
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[1:3])} ({encoder}) failed: {stderr.strip()[-500:]}")
    return seconds, peak_kb / 1024, stdout, stderr


def cold_starts(index_dir: Path, question: str, runs: int) -> list[dict]:
    """Wall time and peak RSS of whole CLI processes, from launch to exit with the answer on stdout."""
    commands = {"rag search": ["search", question, "--json"], "rag ask": ["ask", question, "--json"]}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(runs):
        for label, argv in commands.items():
            for encoder in ENCODERS:
                seconds, rss, stdout, _ = _run_child(
                    [rag_command(), *argv, "--corpus", str(PROJECT_CORPUS), "--index", str(index_dir)], encoder)
                if not json.loads(stdout):
                    raise SystemExit(f"{label} ({encoder}) printed no result")
                samples.setdefault((label, encoder), []).append((seconds, rss))
    rows = []
    for (label, encoder), pairs in samples.items():
        times = [t for t, _ in pairs]
        rows.append({"command": label, "encoder": encoder, "runs": runs,
                     "median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
                     "max_s": round(max(times), 2), "peak_rss_mb": round(max(r for _, r in pairs))})
    for row in rows:
        reference = next(r for r in rows if r["command"] == row["command"] and r["encoder"] == ENCODERS[1])
        row["reference_over_this"] = round(reference["median_s"] / row["median_s"], 2)
    stages = [json.loads(_run_child([sys.executable, "-c", STAGES, str(PROJECT_CORPUS), str(index_dir), question],
                                    ENCODERS[0])[2]) for _ in range(runs)]
    rows.append({"command": "in-process stages (median)", "encoder": ENCODERS[0], "runs": runs,
                 **{k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]}})
    return rows


def warm(session, reference, questions: list[str], with_ask: bool) -> dict[str, list[float]]:
    import faiss
    import numpy as np

    from rag.assistant import RequestOptions
    from rag.index_store import load_vectors

    vectors = np.ascontiguousarray(load_vectors(session.index.folder), dtype=np.float32)
    bare = faiss.IndexFlatIP(vectors.shape[1])
    bare.add(vectors)
    embedder, depth = session.embedder, session.settings.candidates

    def baseline(question: str) -> None:
        bare.search(embedder.encode([question]), depth)

    def baseline_reference(question: str) -> None:
        bare.search(reference.encode([question]), depth)

    operations = {"baseline": baseline, "baseline, sentence-transformers": baseline_reference,
                  "dense": lambda q: session.search(q, RequestOptions(mode="dense")),
                  "bm25": lambda q: session.search(q, RequestOptions(mode="bm25")),
                  "hybrid": lambda q: session.search(q, RequestOptions(mode="hybrid"))}
    if with_ask:
        operations["ask"] = session.ask
    for question in questions[:10]:  # warm-up: lazy imports, allocator, caches
        for operation in operations.values():
            operation(question)
    rng = random.Random(SEED)
    times: dict[str, list[float]] = {name: [] for name in operations}
    for question in questions:
        order = list(operations)
        rng.shuffle(order)
        for name in order:
            began = time.perf_counter()
            operations[name](question)
            times[name].append(time.perf_counter() - began)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=300, help="questions per mode (at least 200)")
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--name", default="latency", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args(argv)
    offline_env()
    from rag.assistant import open_assistant
    from rag.embedding import load_embedder
    from rag.settings import Settings

    questions = latency_questions(args.questions)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        index_dir = Path(tmp) / "index"
        settings = Settings(corpus_dir=PROJECT_CORPUS, index_dir=index_dir)
        embedder = load_embedder(settings)
        session, report = open_assistant(settings, embedder)
        reference = load_embedder(settings.replace(encoder=ENCODERS[1]))
        print(f"project corpus: {report.chunk_count} chunks from {len(report.added)} sources, index kind "
              f"{session.index.manifest.index_kind}; {len(questions)} questions per mode; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        with_ask = hasattr(session, "ask")
        times = warm(session, reference, questions, with_ask)
        serving_rss = peak_rss_mb()
        cold = cold_starts(index_dir, questions[0], args.cold_starts)
        shutil.rmtree(index_dir)

    base = summary_ms(times["baseline"])
    rows = []
    for name, seconds in times.items():
        stats = summary_ms(seconds)
        rows.append({"operation": name, **stats, "p50_vs_baseline": round(stats["p50_ms"] / base["p50_ms"], 2),
                     "p95_vs_baseline": round(stats["p95_ms"] / base["p95_ms"], 2)})
    print(table(f"Warm latency, {len(questions)} questions per operation (ms)", rows,
                ["operation", "n", "p50_ms", "p95_ms", "mean_ms", "p50_vs_baseline", "p95_vs_baseline"]))
    if not with_ask:
        print("(Session.ask does not exist yet: ask latency not measured)")
    print()
    print(table("Cold start: process launch to answer printed (s), per encoder", [r for r in cold if "median_s" in r],
                ["command", "encoder", "runs", "median_s", "min_s", "max_s", "peak_rss_mb", "reference_over_this"]))
    stages = next(r for r in cold if "import_s" in r)
    print(table("Where a cold start goes (s, median)", [stages],
                ["import_s", "model_load_s", "index_open_s", "first_search_s", "peak_rss_mb"]))
    print(f"\npeak RSS of the warm serving process: {serving_rss:.0f} MB")
    hybrid = next(r for r in rows if r["operation"] == "hybrid")
    verdict = "meets" if hybrid["p50_vs_baseline"] <= 1.5 else "MISSES"
    print(f"hybrid p50 is {hybrid['p50_vs_baseline']}x the bare baseline: {verdict} the 1.5x target")
    write_result(args.name, {"questions": len(questions), "chunks": report.chunk_count,
                             "index_kind": session.index.manifest.index_kind, "warm": rows,
                             "cold_start": cold, "serving_peak_rss_mb": round(serving_rss),
                             "ask_measured": with_ask, "hybrid_p50_target_met": verdict == "meets"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
