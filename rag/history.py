"""A conversation's earlier turns for scripts: ``rag ask --history FILE``.

The file is JSON Lines, one earlier turn per line, oldest first: ``{"question": "..."}``, optionally
with ``"searched_as"`` and ``"source_ids"`` (or ``"citations"``), so a line of ``rag ask --json``
output works as it is. A turn without its sources is replayed (rewritten and answered again, in
order), so a file of bare questions works too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.errors import RagError
from rag.followup import Rewrite, Turn, turn_of
from rag.types import Answer

MAX_TURNS = 50  # a longer history is a mistake (the rewrite only looks at the last turns anyway)


def read_history(path: Path) -> list[dict]:
    """The earlier turns as written; one-line errors name the line that is wrong."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read history file {str(path)!r}: {exc.__class__.__name__}") from None
    turns = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item["question"], str) or not item["question"].strip():
                raise TypeError
            if "source_ids" not in item and isinstance(item.get("citations"), list):  # a `rag ask --json` line
                item["source_ids"] = list(dict.fromkeys(c["source_id"] for c in item["citations"]))
            if not all(isinstance(s, str) for s in item.get("source_ids", [])):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise RagError(f"{path}:{number}: expected a JSON object with a non-empty 'question' (and optional "
                           "'searched_as' and 'source_ids' list)") from None
        turns.append(item)
    if len(turns) > MAX_TURNS:
        raise RagError(f"{path}: {len(turns)} turns; a history holds at most {MAX_TURNS}")
    return turns


def replay(items: Sequence[dict],
           ask_followup: Callable[[str, Sequence[Turn]], tuple[Rewrite, Answer]]) -> list[Turn]:
    """Turns ready for the next rewrite; a turn that lacks its sources is asked again."""
    history: list[Turn] = []
    for item in items:
        if item.get("source_ids"):
            history.append(Turn(item["question"], item.get("searched_as") or item["question"],
                                tuple(item["source_ids"])))
            continue
        rewrite, answer = ask_followup(item["question"], history)
        history.append(turn_of(item["question"], rewrite.question, answer))
    return history
