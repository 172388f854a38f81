"""Measure what damaged PDFs with compressed streams do to the PDF loader.

Each trial mutates one of the seeds in tests/pdf_seeds.py (token swaps in filter names and
references, values of the wrong kind, byte overwrites and inserts, bit flips, truncation) and
reads it twice: with pypdf alone, to count which exceptions pypdf raises, and through
``parse_source``, which must give a source or the project's one-line ``SourceError``. Prints a table and writes
``bench/results/fuzz_pdfs.json``.

    .venv/bin/python bench/fuzz_pdfs.py --trials 7500
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from pdf_seeds import mutate, seeds  # noqa: E402

from rag.errors import SourceError  # noqa: E402
from rag.loaders import parse_source  # noqa: E402

KINDS = ("token", "value", "object", "overwrite", "insert", "flip", "truncate")


def random_edits(rng: random.Random) -> list[tuple[str, int, bytes]]:
    return [(rng.choice(KINDS), rng.randrange(1 << 20), rng.randbytes(rng.randint(1, 8)))
            for _ in range(rng.randint(1, 4))]


def pypdf_outcome(data: bytes, stderr: io.StringIO) -> tuple[str, bool]:
    """What pypdf alone does with the file (``"ok"`` or the exception's class name), and whether
    the ``except`` clause of load_pdf before issue 16 caught it."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(stderr):
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                reader.decrypt("")
            for page in reader.pages:
                page.extract_text()
            info = reader.metadata or {}
            str(info.get("/Title", "")), str(info.get("/Author", ""))
    except Exception as exc:  # noqa: BLE001 - counting every kind is the point
        old_clause = (PyPdfError, ValueError, KeyError, TypeError, OSError, AssertionError)
        return exc.__class__.__name__, isinstance(exc, old_clause)
    return "ok", True


def loader_outcome(data: bytes, folder: Path, stderr: io.StringIO) -> str:
    """``"source"``, ``"refused"`` (SourceError), or the class of anything else that escaped."""
    path = folder / "fuzz.pdf"
    path.write_bytes(data)
    try:
        with contextlib.redirect_stderr(stderr):
            parse_source(path, 10_000_000)
    except SourceError:
        return "refused"
    except Exception as exc:  # noqa: BLE001
        return f"escaped {exc.__class__.__name__}"
    return "source"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=7500)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    pdfs = seeds()
    raised: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    noisy: Counter[str] = Counter()
    escaped_before = 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.trials):
            data = mutate(rng.choice(pdfs), random_edits(rng))
            pypdf_err, loader_err = io.StringIO(), io.StringIO()
            name, caught = pypdf_outcome(data, pypdf_err)
            raised[name] += 1
            escaped_before += not caught
            outcomes[loader_outcome(data, Path(tmp), loader_err)] += 1
            noisy.update({"pypdf alone": bool(pypdf_err.getvalue()), "parse_source": bool(loader_err.getvalue())})
    result = {"trials": args.trials, "seed": args.seed, "pypdf_alone": dict(raised.most_common()),
              "escaped_the_old_loader": escaped_before, "loader": dict(outcomes.most_common()),
              "wrote_to_stderr": dict(noisy)}
    print(f"{args.trials} mutated PDFs with compressed streams (seed {args.seed})")
    print("pypdf alone:  " + ", ".join(f"{k} {v}" for k, v in raised.most_common()))
    print(f"escaped the old loader's except clause: {escaped_before} ({escaped_before / args.trials:.1%})")
    print("parse_source: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    print("wrote to stderr: " + ", ".join(f"{k} in {v} trials" for k, v in noisy.items()))
    out = REPO / "bench" / "results" / "fuzz_pdfs.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
