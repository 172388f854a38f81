"""Run the project's retrieval modes over a BEIR dataset and compare with published figures.

    python eval/beir.py [DIR] [--modes dense bm25 hybrid] [--sample N] [--out FILE]

DIR defaults to ../shared/bench/scifact beside the repository. When it is missing the run is
skipped with a message and exit status 0, so CI machines without the data stay green.
The report goes to eval/reports/beir-<dataset>.json; corpus embeddings are cached in .cache/beir/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "bench" / "scifact"
CACHE = REPO / ".cache" / "beir"
REPORTS = REPO / "eval" / "reports"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "dataset",
        nargs="?",
        type=Path,
        default=DEFAULT_DATASET,
        help=f"BEIR dataset folder (default {DEFAULT_DATASET})",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("dense", "bm25", "hybrid"),
        default=["dense", "bm25", "hybrid"],
        help="retrieval modes to run (default all)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="run on an N-document slice with the queries it can answer (for tests)",
    )
    parser.add_argument("--out", type=Path, help="report path (default eval/reports/beir-<dataset>.json)")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"embedding cache folder (default {CACHE})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.add_argument("--first-stage-only", action="store_true",
                        help="skip hybrid+rescore, the product's second stage over the fused head (minutes on CPU)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.dataset / "queries.jsonl").is_file():
        print(
            f"skipped: no BEIR dataset at {args.dataset} (expected queries.jsonl, corpus.jsonl[.gz], "
            "qrels/test.tsv there)",
            file=sys.stderr,
        )
        return 0
    # Models must never be fetched from a hub; set before any Hugging Face import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tqdm import tqdm

    from rag.embedding import load_embedder
    from rag.errors import RagError
    from rag.eval.beir import benchmark_report, format_table, load_beir, run_benchmark, slice_dataset
    from rag.settings import Settings

    try:
        settings = Settings.from_env()
        dataset = load_beir(args.dataset)
        if args.sample:
            dataset = slice_dataset(dataset, args.sample)
        needs_model = bool({"dense", "hybrid"} & set(args.modes))
        embedder = load_embedder(settings) if needs_model else None
        with tqdm(
            total=len(dataset.doc_ids), desc="embedding corpus", unit="doc", file=sys.stderr, disable=None
        ) as bar:
            results = run_benchmark(
                dataset,
                embedder,
                args.modes,
                settings.dense_weight,
                args.cache,
                progress=lambda done, total: bar.update(done - bar.n),
                second_stage=not args.first_stage_only,
            )
    except RagError as exc:
        print(f"beir: error: {exc}", file=sys.stderr)
        return 1
    command = " ".join(["python", "eval/beir.py", *(argv if argv is not None else sys.argv[1:])])
    report = benchmark_report(dataset, results, settings.model_name, settings.dense_weight, command)
    out = args.out or REPORTS / f"beir-{args.dataset.name}{f'-{args.sample}' if args.sample else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_table(report))
    print(f"report: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
