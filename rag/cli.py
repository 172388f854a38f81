"""The ``rag`` command: a thin shell over the library. JSON on stdout with ``--json``,
one-line errors on stderr with a non-zero exit. Heavy imports happen inside commands so
``rag --help`` is instant."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_ERROR = 1


def _settings(args: argparse.Namespace, **extra: Any):
    from rag.settings import Settings

    return Settings.from_env(corpus_dir=getattr(args, "corpus", None), index_dir=getattr(args, "index", None),
                             **extra)


def _progress_bar(description: str) -> Callable[[int, int], None]:
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.setdefault("bar", tqdm(total=total, desc=description, unit="text", file=sys.stderr,
                                           disable=None))
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _open(args: argparse.Namespace, load_model: bool = True):
    """The application layer over the served index, building it first on a fresh clone."""
    from rag.assistant import open_assistant

    assistant, report = open_assistant(_settings(args), progress=_progress_bar("embedding"), load_model=load_model)
    if report is not None:
        print(f"built the index first: {report.chunk_count} chunks from "
              f"{len(report.added)} sources in {report.seconds:.1f}s", file=sys.stderr)
    return assistant


def _options(args: argparse.Namespace):
    """Per-request options from the flags, checked before any model loads."""
    from rag.assistant import RequestOptions

    return RequestOptions(k=args.k, mode=args.mode, sources=tuple(args.source or ()))


def _read_queries(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every line of a ``--queries`` file, all checked before any is run.

    A batch either prints one result per line or refuses to start, naming the first bad line:
    half a batch of results followed by a crash is harder to recover from than no results.
    """
    from rag.assistant import Assistant
    from rag.errors import RagError

    path, check_question = args.queries, Assistant(_settings(args)).check_question
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read queries file {path!r}: {exc.__class__.__name__}") from None
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            query_id, question = item["id"], item["question"]
        except (ValueError, KeyError, TypeError):
            raise RagError(f"{path}:{number}: expected a JSON object with 'id' and 'question'") from None
        if isinstance(query_id, bool) or not isinstance(query_id, (str, int)):
            raise RagError(f"{path}:{number}: 'id' must be a string or an integer, not {query_id!r}"[:300])
        if not isinstance(question, str):
            raise RagError(f"{path}:{number}: 'question' must be a string, not {type(question).__name__}")
        try:
            check_question(question)
        except RagError as exc:
            raise RagError(f"{path}:{number}: {exc}") from None
        queries.append({"id": query_id, "question": question})
    return queries


def _print_json(value: Any, pretty: bool = True) -> None:
    """JSON on stdout, flushed (batches stream), with characters a terminal would act on escaped."""
    from rag.terminal import json_safe

    print(json_safe(json.dumps(value, ensure_ascii=False, indent=2 if pretty else None)), flush=True)


# ---------------------------------------------------------------- commands


def cmd_build(args: argparse.Namespace) -> None:
    from rag.assistant import Assistant

    report = Assistant(_settings(args, ray=args.ray)).build(_progress_bar("embedding"), force=args.force)
    if args.json:
        _print_json(dataclasses.asdict(report))
        return
    if report.did_nothing:
        print(f"index is up to date: {report.chunk_count} chunks from {len(report.unchanged)} sources")
    else:
        print(f"added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)}, "
              f"unchanged {len(report.unchanged)} sources; embedded {report.chunks_embedded} chunks "
              f"and {report.sentences_embedded} sentences; "
              f"index holds {report.chunk_count} chunks ({report.seconds:.1f}s)")
    _print_skipped({s.file: s.reason for s in report.skipped}, sys.stdout)


def _print_skipped(skipped: dict[str, str], stream: Any) -> None:
    """One line per file the index leaves out, with the refusal that says how to fix it."""
    from rag.terminal import one_line

    for reason in skipped.values():
        print(f"skipped {one_line(reason)}", file=stream)


def cmd_add(args: argparse.Namespace) -> None:
    from rag.assistant import Assistant, SourceMetadata
    from rag.reporting import change_row

    metadata = SourceMetadata.from_fields(id=args.id, title=args.title, authors=args.authors, year=args.year,
                                          venue=args.venue, url=args.url)
    change = Assistant(_settings(args)).add(Path(args.file), metadata, _progress_bar("embedding"))
    if args.json:
        _print_json(change_row(change))
        return
    print(f"added {change.document.id!r} ({change.document.title}); embedded {change.report.chunks_embedded} "
          f"chunks, index holds {change.report.chunk_count}")


def cmd_remove(args: argparse.Namespace) -> None:
    from rag.assistant import Assistant
    from rag.reporting import change_row

    change = Assistant(_settings(args)).remove(args.source_id)
    if args.json:
        _print_json(change_row(change))
        return
    print(f"removed {change.document.id!r}; index holds {change.report.chunk_count} chunks")


def cmd_sources(args: argparse.Namespace) -> None:
    from rag.reporting import source_rows

    assistant = _open(args, load_model=False)  # no model unless a build must run first
    rows = source_rows(assistant.sources())
    if args.json:
        _print_json(rows)
        _print_skipped(assistant.skipped(), sys.stderr)  # stdout keeps the contract's shape
        return
    for row in rows:
        authors = ", ".join(row["authors"][:3]) + (" et al." if len(row["authors"]) > 3 else "")
        print(f"{row['source_id']:<40} {row['chunks']:>4} chunks  {row['year'] or '----'}  "
              f"{row['title']} — {authors}")
    _print_skipped(assistant.skipped(), sys.stdout)


def cmd_search(args: argparse.Namespace) -> None:
    from rag.reporting import search_rows

    # Check the request before loading the model: a bad batch line fails before anything prints.
    if args.question is None and not args.queries:
        raise _usage("search needs a QUESTION or --queries FILE")
    options = _options(args)
    queries = _read_queries(args) if args.queries else []
    assistant = _open(args)
    if args.queries:
        for query in queries:
            _print_json({**query, "hits": search_rows(assistant.search(query["question"], options))}, pretty=False)
        return
    rows = search_rows(assistant.search(args.question, options))
    if args.json:
        _print_json(rows)
        return
    for row in rows:
        print(f"[{row['rank']}] {row['score']:.3f}  {row['title']} — {row['section'] or '(no section)'}  "
              f"({row['source_id']} {row['start']}:{row['end']})")
        print("    " + " ".join(row["text"].split())[:400] + "\n")


def cmd_ask(args: argparse.Namespace) -> None:
    from rag.assistant import Assistant
    from rag.reporting import ask_row

    if args.question is None and not args.queries:
        raise _usage("ask needs a QUESTION or --queries FILE")
    if args.history and args.queries:
        raise _usage("--history goes with one QUESTION, not with --queries")
    options = _options(args)
    queries = _read_queries(args) if args.queries else []
    settings = _settings(args)
    if args.generate and not settings.llm_url:
        from rag.conversation import NO_MODEL

        raise _usage(NO_MODEL)
    history = _read_history(args.history) if args.history else None
    if args.question is not None:  # refuse a bad question before loading the model
        Assistant(settings).check_question(args.question)
    assistant = _open(args)
    if args.queries:
        for query in queries:
            answer = assistant.ask(query["question"], options)
            prose = assistant.prose(answer).result() if args.generate else None
            _print_json({"id": query["id"], **ask_row(answer, prose)}, pretty=False)
        return
    rewrite, answer = _ask_in_context(assistant, args.question, history, options)
    if args.json:
        prose = assistant.prose(answer).result() if args.generate else None
        # Follow-up fields only for a follow-up: a plain ask keeps the shape of POST /v1/ask and MCP's ask.
        followup = _rewrite_row(rewrite) if history is not None else {}
        _print_json({**ask_row(answer, prose), **followup})
        return
    if rewrite.question != args.question:
        print(f"Searched as: {rewrite.question}" + (f"  (in {', '.join(rewrite.sources)})" if rewrite.sources
                                                      else "") + "\n")
    if args.generate and not answer.abstained:
        from rag.prose_display import stream_then_correct

        run = assistant.prose(answer)
        stream_then_correct(run.tokens(), run.result, sys.stdout)
        print("\nQuotes:")
    _print_answer(assistant, answer)


def _read_history(path: str) -> list[dict[str, Any]]:
    from rag.history import read_history

    return read_history(Path(path))


def _ask_in_context(assistant, question: str, history: list[dict[str, Any]] | None, options):
    """``(rewrite, answer)``: the question as typed, or made standalone from the earlier turns."""
    from rag.followup import Rewrite
    from rag.history import replay

    if history is None:
        return Rewrite(question), assistant.ask(question, options)

    def followup(text, turns):
        return assistant.ask_followup(text, turns, options)

    return assistant.ask_followup(question, replay(history, followup), options)


def _rewrite_row(rewrite) -> dict[str, Any]:
    return {"searched_as": rewrite.question, "rewritten_by": None if rewrite.method == "none" else rewrite.method,
            "kept_to_sources": list(rewrite.sources)}


def _print_answer(assistant, answer) -> None:
    from rag.reporting import format_location, format_references

    print(answer.text + "\n")
    if answer.abstained:
        print("Nearest material:")
        for hit in answer.nearest:
            document = assistant.document(hit.chunk.doc_id)
            where = format_location(hit.chunk.section, hit.chunk.page) or "(no section)"
            title = document.title if document else hit.chunk.doc_id
            print(f"  - {title} — {where}: " + " ".join(hit.chunk.text.split())[:200] + "…")
        return
    print("References:")
    for line in format_references(answer.citations):
        print("  " + line)


def cmd_serve(args: argparse.Namespace) -> None:
    from rag.http_api import serve

    serve(_settings(args), host=args.host, port=args.port, token=os.environ.get("RAG_API_TOKEN", ""))


def cmd_mcp(args: argparse.Namespace) -> None:
    from rag.mcp_server import run_stdio

    run_stdio(_settings(args), writes=bool(os.environ.get("RAG_API_TOKEN")))


def cmd_eval(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from rag.eval.gate import DEFAULT_THRESHOLDS, load_thresholds, shortfalls
    from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
    from rag.eval.report import display_path, report_stem
    from rag.eval.run import run_evaluation
    from rag.modes import MODES, Mode

    questions_path = Path(args.questions) if args.questions else DEFAULT_QUESTIONS
    questions = load_questions(questions_path)
    modes = MODES if args.mode == "all" else (Mode.parse(args.mode),)
    gate_path = None if args.gate is None else Path(args.gate or DEFAULT_THRESHOLDS)
    gate = load_thresholds(gate_path) if gate_path else None
    session = _open(args)
    with tqdm(desc="evaluating", unit="step", file=sys.stderr, disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = run_evaluation(session, questions, display_path(questions_path), modes, args.k,
                                recipes=not args.no_recipes, progress=progress)
    paths = report.write(Path(args.report_dir) if args.report_dir else DEFAULT_QUESTIONS.parent / "reports",
                         report_stem(args.mode, not args.no_recipes, questions_path))
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.table())
        print(f"report: {display_path(paths['json'])}, summary: {display_path(paths['markdown'])}")
    if gate and gate_path:
        split = gate.split if gate.split in report.splits else report.splits[-1]
        problems = shortfalls(report.measured(split), gate)
        if problems:
            raise _usage(f"quality gate {display_path(gate_path)} failed on the {split} split: {'; '.join(problems)}")
        print(f"quality gate passed: {gate.mode} meets every bound in {display_path(gate_path)} on the {split} split",
              file=sys.stderr)


def _usage(message: str) -> Exception:
    from rag.errors import RagError

    return RagError(message)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Offline, cited question answering over research sources.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable, help_text: str, with_json: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--corpus", help="corpus folder (default: corpus/ or $RAG_CORPUS_DIR)")
        sub.add_argument("--index", help="index folder (default: index/ or $RAG_INDEX_DIR)")
        if with_json:
            sub.add_argument("--json", action="store_true", help="print JSON on stdout")
        sub.set_defaults(handler=handler)
        return sub

    build = command("build", cmd_build, "Build or incrementally update the index from the corpus folder.")
    build.add_argument("--force", action="store_true", help="re-embed every document")
    build.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="embed on Ray: a private local Ray, or join the cluster at ADDRESS (needs .[scale])")

    add = command("add", cmd_add, "Add a source file (txt, md, html, pdf) to the corpus, then index it.")
    add.add_argument("file")
    add.add_argument("--id", help="source id (default: from front matter or file name)")
    add.add_argument("--title")
    add.add_argument("--authors", help="authors separated by ';' or ' and '")
    add.add_argument("--year", type=int)
    add.add_argument("--venue")
    add.add_argument("--url")

    remove = command("remove", cmd_remove, "Remove a source by id, then update the index.")
    remove.add_argument("source_id")

    command("sources", cmd_sources, "List the indexed sources.")

    search = command("search", cmd_search, "Rank passages for a question.")
    search.add_argument("question", nargs="?")
    search.add_argument("--queries", help="JSONL file of {id, question}; prints one JSON line per query")
    search.add_argument("--k", type=int, help="passages to return (default 5, or $RAG_K)")
    search.add_argument("--mode", choices=("dense", "bm25", "hybrid"), help="retrieval mode (default hybrid)")
    search.add_argument("--source", action="append", help="restrict to this source id (repeatable)")

    ask = command("ask", cmd_ask, "Answer a question with verbatim, cited quotes (or say the sources are silent).")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--queries", help="JSONL file of {id, question}; prints one JSON answer per line")
    ask.add_argument("--k", type=int, help="passages the answer draws its quotes from (default 5, or $RAG_K)")
    ask.add_argument("--mode", choices=("dense", "bm25", "hybrid"), help="retrieval mode (default hybrid)")
    ask.add_argument("--source", action="append", help="restrict to this source id (repeatable)")
    ask.add_argument("--generate", action="store_true",
                     help="also write the answer in prose with the model at $RAG_LLM_URL; every sentence is checked")
    ask.add_argument("--history", metavar="FILE",
                     help="JSONL of earlier turns ({question}, or `rag ask --json` lines): the question is a follow-up")

    serve = command("serve", cmd_serve, "Serve the HTTP JSON API (and an OpenAI-compatible chat endpoint).",
                    with_json=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    command("mcp", cmd_mcp, "Serve the assistant's tools over MCP on stdin/stdout (for agent and chat clients).",
            with_json=False)

    evaluate = command("eval", cmd_eval,
                       "Score retrieval (each mode and reference recipe) and answers per split; write a report.")
    evaluate.add_argument("--questions", help="questions JSONL (default eval/questions.jsonl)")
    evaluate.add_argument("--mode", choices=("dense", "bm25", "hybrid", "all"), default="all",
                          help="retrieval mode to score (default all)")
    evaluate.add_argument("--k", type=int, default=10, help="hits scored per question (default 10)")
    evaluate.add_argument("--report-dir", help="where the JSON, Markdown and PNG go (default eval/reports)")
    evaluate.add_argument("--no-recipes", action="store_true",
                          help="skip the reference recipes (1000-character chunks: MiniLM flat, bm25s)")
    evaluate.add_argument("--gate", nargs="?", const="", metavar="THRESHOLDS",
                          help="fail unless the gated mode meets the minimums (default eval/thresholds.toml)")
    return parser


EXIT_BUG = 70  # EX_SOFTWARE from sysexits.h: the program, not the input, is at fault


def main(argv: list[str] | None = None) -> int:
    """Run one command. The boundary rule: a failure caused by input or by the state on disk ends in
    one line on stderr naming the file and what to do, with exit 1; only a bug shows a traceback,
    followed by a line saying it is one; a reader closing the pipe ends the command quietly."""
    from rag import terminal

    # Models must never be fetched from a hub; set before any Hugging Face import.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        with terminal.clean_stdout():
            try:
                code = _run(build_parser().parse_args(argv))
            finally:  # also after --help's SystemExit: its text is still in the buffer
                sys.stdout.flush()
    except BrokenPipeError:
        return terminal.reader_went_away()
    return code


def _run(args: argparse.Namespace) -> int:
    from rag import terminal
    from rag.errors import RagError

    try:
        args.handler(args)
    except RagError as exc:
        terminal.say(f"rag: error: {terminal.one_line(str(exc))}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        terminal.say("rag: interrupted; the index being served is unchanged")
        return 130
    except BrokenPipeError:
        raise
    except OSError as exc:  # the disk's state: permissions, a full disk, a path that is a folder
        where = f"{exc.filename}: " if exc.filename else ""
        terminal.say(f"rag: error: {terminal.one_line(where + (exc.strerror or str(exc)))}; "
                     "check the path, its permissions and the free space")
        return EXIT_ERROR
    except Exception:
        traceback.print_exc()
        terminal.say("rag: internal error: the traceback above is a bug in rag, not a problem with your "
                     "input; please report it with the command you ran")
        return EXIT_BUG
    return 0


if __name__ == "__main__":
    sys.exit(main())
