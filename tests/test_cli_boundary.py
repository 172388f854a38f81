"""The CLI's boundary rule: input and disk-state failures are one line on stderr, a bug is a
traceback with a line saying so, a closed pipe ends a command quietly, and text from sources
reaches the terminal without control sequences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import cli
from rag.cli import main

REPO = Path(__file__).resolve().parent.parent
# `rag` as installed, with the keyword embedder in place of the packaged model.
RAG = r"""
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
import rag.embedding
from conftest import KeywordEmbedder
rag.embedding.load_embedder = lambda settings: KeywordEmbedder()
from rag.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_into_closed_pipe(*argv: str) -> tuple[int, str]:
    """Run ``rag argv`` with stdout a pipe nobody reads (``| head -0``): exit code and stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        run = subprocess.run([sys.executable, "-c", RAG, str(REPO), *argv], stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=300, cwd=REPO)
    finally:
        os.close(write_end)
    return run.returncode, run.stderr


@pytest.mark.slow  # a dozen `rag` processes: ~30 s on a quiet laptop
def test_every_command_through_a_closed_pipe_ends_without_a_traceback(cli_env, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "question": "cats"}\n{"id": "q2", "question": "rockets"}\n')
    owls = tmp_path / "owls.txt"
    owls.write_text("Owls hunt voles at night.\n", encoding="utf-8")
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": "How long does a cat sleep?", "answerable": True,
                                     "evidence": [{"source_id": "cats", "quote": "about fifteen hours"}]}) + "\n")
    # Every command, and each way it writes: plain print, pretty JSON, streamed JSON lines.
    commands = [("--help",), ("build",), ("sources",), ("sources", "--json"), ("search", "cats"),
                ("search", "cats", "--json"), ("search", "--queries", str(queries), "--json"),
                ("ask", "Why do cats sleep?"), ("ask", "--queries", str(queries), "--json"),
                ("add", str(owls)), ("remove", "owls"),
                ("eval", "--questions", str(questions), "--mode", "bm25", "--report-dir", str(tmp_path / "out"))]
    outcomes = {" ".join(argv): run_into_closed_pipe(*argv) for argv in commands}
    # 141: the shell's code for a stage ended by a closed pipe; argparse itself ignores the
    # failed write of --help and exits 0.
    assert {command: code for command, (code, _) in outcomes.items()} == {**dict.fromkeys(outcomes, 141),
                                                                          "--help": 0}
    for command, (_, stderr) in outcomes.items():
        assert "Traceback" not in stderr and "Exception ignored" not in stderr, (command, stderr)
    # The pipe closed after the work: add and remove went through.
    assert [p.name for p in (cli_env.parent / "corpus").glob("owls*")] == []


def test_an_error_through_a_closed_pipe_is_still_one_line(cli_env, capsys):
    assert main(["build"]) == 0
    assert run_into_closed_pipe("search", "") == (1, "rag: error: the question is empty; type a question\n")


def test_control_sequences_from_a_source_never_reach_the_terminal(cli_env, capsys, tiny_corpus):
    (tiny_corpus / "cats.md").write_text(
        "---\nid: cats\ntitle: \"Cats \\e[31mRED\\e]0;owned\\a \\x9b2J\\u202eevil\"\n---\n"
        "Cats sleep\x1b[2J all day.\x07\n", encoding="utf-8")
    assert main(["sources"]) == 0
    assert main(["search", "cats sleep", "--k", "1"]) == 0
    out = capsys.readouterr().out
    assert "Cats RED evil" in out and "Cats sleep all day." in out
    assert not any(c in out for c in "\x1b\x07\x9b\u202e")
    assert main(["search", "cats sleep", "--k", "1", "--json"]) == 0
    text = capsys.readouterr().out
    assert not any(c in text for c in "\x1b\x07\x9b\u202e")  # escaped as \uXXXX, the data unchanged
    (hit,) = json.loads(text)
    assert hit["title"] == "Cats \x1b[31mRED\x1b]0;owned\x07 \x9b2J\u202eevil"


def test_an_error_naming_a_file_is_one_clean_line(cli_env, capsys, tmp_path):
    bad = tmp_path / "a\x1b[31m\nb.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    assert main(["search", "--queries", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "\x1b" not in err
    assert err == f"rag: error: {tmp_path}/a b.jsonl:1: expected a JSON object with 'id' and 'question'\n"


def test_the_disk_state_is_a_one_line_error(cli_env, capsys, tmp_path):
    (tmp_path / "a-file").write_text("")
    assert main(["build", "--index", str(tmp_path / "a-file")]) == 1
    assert capsys.readouterr() == ("", f"rag: error: {tmp_path / 'a-file'}: File exists; check the path, its "
                                       "permissions and the free space\n")


def test_a_bug_shows_its_traceback_and_says_it_is_one(cli_env, capsys, monkeypatch):
    def broken(args):
        return 1 / 0

    monkeypatch.setattr(cli, "cmd_sources", broken)  # build_parser looks the handler up at each run
    assert main(["sources"]) == cli.EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err
    assert err.splitlines()[-1] == ("rag: internal error: the traceback above is a bug in rag, not a problem "
                                    "with your input; please report it with the command you ran")


@pytest.mark.parametrize("argv", [("sources",), ("build",)])
def test_skipped_files_are_listed_by_build_and_sources(cli_env, capsys, tiny_corpus, argv):
    (tiny_corpus / "empty.txt").write_bytes(b"")
    assert main(["build"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "skipped empty.txt: the file is empty"
    assert main(list(argv)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "skipped empty.txt: the file is empty"
    assert main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    body = json.loads(out)
    if argv == ("build",):
        assert body["skipped"] == [{"file": "empty.txt", "reason": "empty.txt: the file is empty"}]
    else:  # the contract's list of sources on stdout, the skipped files on stderr
        assert [row["source_id"] for row in body] == ["cats", "rockets"]
        assert err == "skipped empty.txt: the file is empty\n"
