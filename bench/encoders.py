"""Embedding throughput for builds: the ONNX encoder against sentence-transformers, at equal vectors.

    python bench/encoders.py                # 512 SciFact passages, 3 rounds (~5 minutes on 2 cores)
    python bench/encoders.py --passages 256 --rounds 2

Passages are SciFact abstracts chunked as a build chunks them (600 characters); each round
encodes all of them with both encoders in ``batch_size`` batches, in alternating order, so a busy
neighbour slows both alike. It decides whether builds use the ONNX encoder too: only if it is
faster and every vector has cosine >= 0.9999 to the reference's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
from corpora import SCIFACT
from harness import offline_env, table, write_result

EQUAL = 0.9999


def scifact_passages(n: int) -> list[str]:
    from rag.chunking import ChunkerSettings, chunk_document
    from rag.types import Document

    passages: list[str] = []
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            document = Document(id=row["_id"], title=row.get("title", ""), text=row["text"])
            passages.extend(c.text for c in chunk_document(document, ChunkerSettings(size=600, overlap=120)))
            if len(passages) >= n:
                return passages[:n]
    return passages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="encoders", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args(argv)
    offline_env()
    from rag.embedding import encode_batched, load_embedder
    from rag.settings import Settings

    settings = Settings()
    encoders = {"onnx": load_embedder(settings),
                "sentence-transformers": load_embedder(settings.replace(encoder="sentence-transformers"))}
    passages = scifact_passages(args.passages)
    print(f"{len(passages)} passages, batch {settings.batch_size}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, np.ndarray] = {}
    for round_number in range(args.rounds):
        order = list(encoders) if round_number % 2 == 0 else list(reversed(encoders))
        for name in order:
            began = time.perf_counter()
            vectors[name] = encode_batched(encoders[name], passages, settings.batch_size)
            seconds[name].append(time.perf_counter() - began)
    cosines = (vectors["onnx"] * vectors["sentence-transformers"]).sum(axis=1)
    rows = [{"encoder": name, "rounds": len(times), "median_s": round(statistics.median(times), 2),
             "passages_per_s": round(len(passages) / statistics.median(times), 1)} for name, times in seconds.items()]
    speedup = round(rows[1]["median_s"] / rows[0]["median_s"], 2)
    equal = bool(cosines.min() >= EQUAL)
    print(table("Embedding throughput (median of rounds)", rows, ["encoder", "rounds", "median_s", "passages_per_s"]))
    verdict = "yes" if speedup > 1 and equal else "no"
    print(f"\nONNX is {speedup}x the reference's speed; min cosine to the reference {cosines.min():.6f} "
          f"({'equal' if equal else 'NOT equal'} at {EQUAL}); builds use ONNX: {verdict}")
    write_result(args.name, {"passages": len(passages), "batch_size": settings.batch_size, "encoders": rows,
                             "onnx_speedup": speedup, "min_cosine": round(float(cosines.min()), 6),
                             "mean_cosine": round(float(cosines.mean()), 6)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
