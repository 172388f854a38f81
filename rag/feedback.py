"""Reader feedback: one JSON line per thumbs up / down, appended to ``<data_dir>/feedback.jsonl``.

Each line holds what was rated (question, answer text, citations with their offsets, or the
nearest passages of an abstention) and how it was asked, so a rating can be replayed later.
Ratings are events: changing a thumb appends a new line rather than rewriting an old one.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.reporting import answer_row
from rag.types import Answer

FEEDBACK_FILE = "feedback.jsonl"
RATINGS = ("down", "up")  # index = st.feedback("thumbs") value


class FeedbackError(RagError):
    """A rating that is not one of :data:`RATINGS`."""


def feedback_record(answer: Answer, rating: str, *, mode: str, k: int, sources: Sequence[str] = (),
                    generation: str = "", created_at: datetime | None = None) -> dict[str, Any]:
    """The JSON line for one rating of ``answer``."""
    if rating not in RATINGS:
        raise FeedbackError(f"rating {rating!r} is not one of {', '.join(RATINGS)}")
    when = created_at or datetime.now(UTC)
    return {
        "created_at": when.isoformat(timespec="seconds"),
        "rating": rating,
        **answer_row(answer),
        "nearest": [{"source_id": h.chunk.doc_id, "start": h.chunk.start, "end": h.chunk.end}
                    for h in answer.nearest],
        "mode": mode,
        "k": k,
        "sources": list(sources),
        "index": generation,
    }


def append_feedback(data_dir: Path, record: Mapping[str, Any]) -> Path:
    """Append ``record`` as one line; the lock keeps lines whole when two sessions rate at once."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FEEDBACK_FILE
    line = json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(line)
            handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return path


def read_feedback(data_dir: Path) -> list[dict[str, Any]]:
    """Every rating recorded so far, oldest first (empty when there is none)."""
    path = data_dir / FEEDBACK_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
