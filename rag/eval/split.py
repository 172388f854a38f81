"""A fixed-seed tuning / held-out test split, stratified by answerability, style and kind, and
the cross-validation folds the tuners draw inside the tuning split.

The split is stored in the questions file (a ``split`` field per line), so it never moves: a
question keeps the split it was given, and only questions without one are assigned. Tune only
on ``tune``; ``test`` is read to report, never to choose.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from rag.eval.questions import EvalQuestion, parse_question, read_lines

SEED = 20261130
TEST_SHARE = 0.45  # at least 40% held out, with a margin for rounding in small strata
FOLD_SEED = 7  # the tuners' first shuffle of the folds; a repeated cross-validation adds 1, 2, ...

Item = TypeVar("Item")


def assign_splits(questions: Sequence[EvalQuestion], seed: int = SEED,
                  test_share: float = TEST_SHARE) -> dict[str, str]:
    """``{question id: "tune" | "test"}``: existing splits kept, the rest drawn per stratum.

    Each stratum (``EvalQuestion.group``) is shuffled with its own seeded generator, so adding
    questions of one style never reshuffles another.
    """
    splits = {q.id: q.split for q in questions if q.split}
    strata: dict[str, list[EvalQuestion]] = {}
    for question in questions:
        strata.setdefault(question.group, []).append(question)
    for group, members in sorted(strata.items()):
        held = sum(splits.get(q.id) == "test" for q in members)
        fresh = sorted(q.id for q in members if q.id not in splits)
        random.Random(f"{seed}:{group}").shuffle(fresh)
        wanted = max(0, math.ceil(len(members) * test_share) - held)
        for position, qid in enumerate(fresh):
            splits[qid] = "test" if position < wanted else "tune"
    return splits


def write_splits(path: Path, seed: int = SEED) -> dict[str, str]:
    """Add a ``split`` to every line of ``path`` that lacks one; other fields and order unchanged."""
    items = read_lines(path)
    questions = [parse_question(item, f"{path}:{number}") for number, item in items]
    splits = assign_splits(questions, seed)
    lines = [json.dumps({**item, "split": splits[item["id"]]}, ensure_ascii=False) for _, item in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return splits


def cross_folds(items: Sequence[Item], k: int, key: Callable[[Item], str],
                seed: int = FOLD_SEED) -> list[tuple[list[Item], list[Item]]]:
    """``k`` pairs of (training items, held-out fold) for cross-validation, each item held out once.

    The items are sorted by ``key`` (a question id) before the seeded shuffle, so the folds depend
    on the questions and the seed, not on the order the items were collected in, and are dealt
    round-robin, so fold sizes differ by at most one. Every tuner draws its folds here, by this one
    rule.
    """
    if not 2 <= k <= len(items):
        raise ValueError(f"cannot cross-validate {len(items)} items in {k} folds: use 2 to {len(items)} folds")
    order = sorted(items, key=key)
    random.Random(seed).shuffle(order)
    parts = [order[i::k] for i in range(k)]
    return [([item for j, part in enumerate(parts) if j != i for item in part], held)
            for i, held in enumerate(parts)]
