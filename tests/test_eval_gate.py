"""The CI gate: the real model over the project corpus and eval set must meet eval/thresholds.toml.

One model load and one index build for the module; `rag eval` builds that index itself, as on a
fresh clone.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from rag.cli import main
from rag.embedding import load_embedder
from rag.eval.gate import DEFAULT_THRESHOLDS, load_thresholds, shortfalls
from rag.eval.metrics import RETRIEVAL_METRICS
from rag.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run ``rag eval`` with the real model loaded once; returns ``run(*args) -> (code, out, err)``."""
    folder = tmp_path_factory.mktemp("eval-gate")
    settings = Settings()
    embedder = load_embedder(settings)
    base = ["--corpus", str(settings.corpus_dir), "--index", str(folder / "index"),
            "--report-dir", str(folder / "reports")]

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            patch.setattr("rag.embedding.load_embedder", lambda _settings: embedder)
            code = main(["eval", *args, *base])
        return code, out.getvalue(), err.getvalue()

    run.reports = folder / "reports"  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def all_modes(cli):
    """``rag eval --mode all --gate`` once: the acceptance run and the CI gate together."""
    code, out, err = cli("--mode", "all", "--gate")
    report = json.loads((cli.reports / "retrieval.json").read_text(encoding="utf-8"))
    return code, out, err, report


def test_eval_all_modes_on_a_fresh_index_prints_the_table_and_writes_the_report(all_modes, cli):
    _, out, err, report = all_modes
    assert "built the index first" in err
    lines = out.splitlines()
    assert lines[0].startswith("tune: 120 answerable, 37 on-topic and 7 off-topic")
    assert lines[1].split() == ["system", "chars", *RETRIEVAL_METRICS]
    assert [line.split()[0] for line in lines[2:7]] == ["dense", "bm25", "hybrid", "recipe:minilm-1000",
                                                        "recipe:bm25s-1000"]
    assert {name: body["questions"] for name, body in report["splits"].items()} == {
        "tune": {"answerable": 120, "on-topic": 37, "off-topic": 7},
        "test": {"answerable": 104, "on-topic": 32, "off-topic": 6}}
    assert (cli.reports / "retrieval.png").stat().st_size > 0
    assert (cli.reports / "retrieval.md").read_text(encoding="utf-8").startswith("# Retrieval and answer eval")


def test_the_gate_covers_the_default_mode_on_the_held_out_split():
    thresholds = load_thresholds(DEFAULT_THRESHOLDS)
    assert thresholds.mode == Settings().mode
    assert thresholds.split == "test"
    assert set(RETRIEVAL_METRICS) <= set(thresholds.minimums)
    assert {"answer@1", "evidence@any"} <= set(thresholds.minimums)
    assert thresholds.maximums["non_content_quotes"] == 0


def measured(report: dict, split: str = "test") -> dict:
    values = {mode: dict(body["metrics"]) for mode, body in report["splits"][split]["retrieval"].items()}
    answers = report["splits"][split]["answers"]
    values[answers["mode"]].update(answers["metrics"])
    return values


def test_default_mode_meets_the_thresholds(all_modes):
    code, _, err, report = all_modes
    assert shortfalls(measured(report), load_thresholds(DEFAULT_THRESHOLDS)) == []
    assert code == 0, err
    assert "quality gate passed" in err


def test_gate_fails_when_a_threshold_is_raised_above_the_measured_value(all_modes, tmp_path):
    values = measured(all_modes[3])
    ndcg = values["hybrid"]["ndcg@10"]
    raised = tmp_path / "thresholds.toml"
    raised.write_text(DEFAULT_THRESHOLDS.read_text(encoding="utf-8").replace(
        f'"ndcg@10" = {load_thresholds(DEFAULT_THRESHOLDS).minimums["ndcg@10"]:.3f}',
        f'"ndcg@10" = {min(1.0, ndcg + 0.01):.4f}'), encoding="utf-8")
    assert shortfalls(values, load_thresholds(raised)) == [
        f"hybrid ndcg@10 = {ndcg:.4f} is below the minimum {min(1.0, ndcg + 0.01):.4f}"]
