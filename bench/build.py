"""Index build throughput and incremental rebuild time, with the real model.

    python bench/build.py                  # project + SciFact + ~100k synthetic chunks (~30 minutes)
    python bench/build.py --skip-scifact --synthetic-paragraphs 0   # project corpus only (~1 minute)

Each build runs in its own process (``rag.build.build_index``, what ``rag build`` calls) so its
time and peak RSS are its own; ``build_s`` excludes start-up and model load, ``process_s`` does
not. Per corpus: a full build into an empty index, a no-op build, then an incremental build
after one source file changed (one paragraph appended). A model-free run of the same builds (a
hashing embedder) shows what the rest of the pipeline costs. The synthetic corpus
(bench/synthetic.py, 10 paragraphs per file, about 100k chunks) is built that way only:
embedding it with the real model would take hours on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from corpora import PROJECT_CORPUS, write_scifact_corpus
from harness import CACHE_DIR, offline_env, table, write_result
from synthetic import synthetic_documents, write_markdown_corpus

# One build in a fresh process; prints the BuildReport, wall time and peak RSS as JSON.
ONE_BUILD = r"""
import json, resource, sys, time, zlib
t0 = time.perf_counter()
from pathlib import Path
import numpy as np
from rag.build import build_index
from rag.embedding import load_embedder
from rag.settings import Settings

class HashingEmbedder:
    '''Words hashed into 384 dimensions: no model, so the rest of the pipeline shows.'''
    name, dimension = "hashing-384", 384
    def encode(self, texts):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]))
embedder = HashingEmbedder() if sys.argv[3] == "hashing" else load_embedder(settings)
t1 = time.perf_counter()
report = build_index(settings, embedder)
t2 = time.perf_counter()
print(json.dumps({"chunks": report.chunk_count, "embedded": report.chunks_embedded,
                  "changed": len(report.added) + len(report.changed) + len(report.removed),
                  "build_s": t2 - t1, "process_s": t2 - t0, "setup_s": t1 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def one_build(corpus: Path, index: Path, embedder: str) -> dict:
    done = subprocess.run([sys.executable, "-c", ONE_BUILD, str(corpus), str(index), embedder],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"build of {corpus} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def change_one_file(corpus: Path) -> str:
    """Append one paragraph to the first source file; returns its name."""
    first = sorted(p for p in corpus.iterdir() if p.suffix in (".md", ".txt") and p.name not in
                   ("SOURCES.md", "README.md"))[0]
    with open(first, "a", encoding="utf-8") as handle:
        handle.write("\n\nAn added paragraph: incremental builds re-embed only the file that changed.\n")
    return first.name


def measure(label: str, source: Path, embedder: str, work: Path) -> list[dict]:
    corpus, index = work / f"{label}-corpus", work / f"{label}-index"
    shutil.copytree(source, corpus)
    rows = []
    for step in ("full build", "no-op build", "incremental (1 file changed)"):
        if step.startswith("incremental"):
            change_one_file(corpus)
        result = one_build(corpus, index, embedder)
        rows.append({"corpus": label, "embedder": embedder, "step": step, "chunks": result["chunks"],
                     "embedded": result["embedded"], "build_s": round(result["build_s"], 2),
                     "chunks_per_s": round(result["chunks"] / result["build_s"], 1) if step == "full build" else None,
                     "process_s": round(result["process_s"], 2), "peak_rss_mb": round(result["peak_rss_mb"])})
        print("   ", rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--synthetic-paragraphs", type=int, default=70_000,
                        help="synthetic paragraphs to build (about 1.5 chunks each); 0 to skip")
    args = parser.parse_args(argv)
    offline_env()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    corpora = [("project", PROJECT_CORPUS, ("real", "hashing"))]
    if not args.skip_scifact:
        corpora.append(("scifact", write_scifact_corpus(CACHE_DIR / "scifact-corpus"), ("real", "hashing")))
    rows = []
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        if args.synthetic_paragraphs:
            synthetic = Path(tmp) / "synthetic-source"
            write_markdown_corpus(synthetic, synthetic_documents(args.synthetic_paragraphs, seed=7)[0])
            corpora.append(("synthetic", synthetic, ("hashing",)))
        for label, source, embedders in corpora:
            for embedder in embedders:
                rows += measure(label, source, embedder, Path(tmp) / embedder)
    print(table("Index builds (each its own process; build_s excludes start-up and model load)", rows,
                ["corpus", "embedder", "step", "chunks", "embedded", "build_s", "chunks_per_s", "process_s",
                 "peak_rss_mb"]))
    write_result("build", {"builds": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
