"""The CI gate: the least each metric of the default mode may score (the most, for error counts),
on one split of the questions, read from ``eval/thresholds.toml``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.errors import SettingsError
from rag.eval.answers import ANSWER_METRICS
from rag.eval.metrics import RETRIEVAL_METRICS
from rag.eval.questions import SPLITS, EvalDataError
from rag.modes import Mode
from rag.settings import REPO_ROOT

DEFAULT_THRESHOLDS = REPO_ROOT / "eval" / "thresholds.toml"
KNOWN_METRICS = (*RETRIEVAL_METRICS, *ANSWER_METRICS)
GATE_SPLITS = (*SPLITS, "all")


@dataclass(frozen=True)
class Thresholds:
    mode: Mode
    split: str
    minimums: Mapping[str, float]
    maximums: Mapping[str, float]


def _bounds(table: object, path: Path, name: str) -> dict[str, float]:
    if not isinstance(table, dict):
        raise EvalDataError(f"{path}: [{name}] must map metric names to numbers")
    for metric, value in table.items():
        if metric not in KNOWN_METRICS:
            raise EvalDataError(f"{path}: unknown metric {metric!r}; known: {', '.join(KNOWN_METRICS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise EvalDataError(f"{path}: {name} for {metric} must be a number >= 0, got {value!r}")
        if metric != "non_content_quotes" and value > 1:
            raise EvalDataError(f"{path}: {name} for {metric} must be a number in [0, 1], got {value!r}")
    return {metric: float(value) for metric, value in table.items()}


def load_thresholds(path: Path) -> Thresholds:
    """Read ``mode``, ``split`` and ``[minimums]`` (optionally ``[maximums]``) tables."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EvalDataError(f"cannot read thresholds {str(path)!r} ({exc.__class__.__name__}: {exc})") from None
    if not {"mode", "split", "minimums"} <= set(data) <= {"mode", "split", "minimums", "maximums"}:
        raise EvalDataError(f"{path}: keys are {sorted(data)!r}; expected 'mode', 'split', a [minimums] "
                            "and optionally a [maximums] table")
    try:
        mode = Mode.parse(data["mode"])
    except SettingsError as exc:
        raise EvalDataError(f"{path}: {exc}") from None
    if data["split"] not in GATE_SPLITS:
        raise EvalDataError(f"{path}: split {data['split']!r} is not one of {', '.join(GATE_SPLITS)}")
    return Thresholds(mode, data["split"], _bounds(data["minimums"], path, "minimums"),
                      _bounds(data.get("maximums", {}), path, "maximums"))


def shortfalls(measured: Mapping[str, Mapping[str, float]], thresholds: Thresholds) -> list[str]:
    """One line per metric out of bounds; empty when the gate passes.

    Args:
        measured: metric values (retrieval and answers) per mode on the gated split.
    """
    if thresholds.mode not in measured:
        raise EvalDataError(f"the gate needs mode {thresholds.mode.value!r}, which was not evaluated; "
                            f"run with --mode {thresholds.mode.value} or --mode all")
    values = measured[thresholds.mode]
    problems = [f"{thresholds.mode} {name} = {values[name]:.4f} is below the minimum {bound:.4f}"
                for name, bound in thresholds.minimums.items() if name in values and values[name] < bound]
    problems += [f"{thresholds.mode} {name} = {values[name]:.4f} is above the maximum {bound:.4f}"
                 for name, bound in thresholds.maximums.items() if name in values and values[name] > bound]
    missing = sorted((set(thresholds.minimums) | set(thresholds.maximums)) - set(values))
    if missing:
        raise EvalDataError(f"the gate checks {', '.join(missing)}, which this run did not measure "
                            f"for mode {thresholds.mode.value!r}")
    return problems
