"""The project corpus built three ways with the real model: in this process, through a real local
Ray (started and stopped by the build), and into Milvus Lite. Same chunks and offsets, the same
vectors to cosine 0.9999, the same eval metrics on both stores; a Ray build killed midway leaves
the served generation, and the next build succeeds."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.assistant import Assistant
from rag.build import build_index
from rag.embedding import load_embedder
from rag.eval.questions import DEFAULT_QUESTIONS, load_questions
from rag.eval.run import run_evaluation
from rag.index_store import current_generation, load_vectors, open_index
from rag.modes import MODES
from rag.settings import REPO_ROOT, Settings
from rag.stores.milvus import MilvusStore

pytestmark = pytest.mark.slow

ADDED_LATER = "liu2019-mtdnn"
ANSWERS_COMPARED = 8  # questions answered through each store, quote for quote


@pytest.fixture(scope="module")
def local_build(tmp_path_factory):
    """(settings, embedder): the project corpus built in this process with the real model."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        root = tmp_path_factory.mktemp("scale")
        corpus = Path(shutil.copytree(REPO_ROOT / "corpus", root / "corpus"))
        local = Settings(corpus_dir=corpus, index_dir=root / "local")
        embedder = load_embedder(local)
        build_index(local, embedder)
        yield local, embedder


@pytest.fixture(scope="module")
def built(local_build, tmp_path_factory):
    """(local settings, Ray settings, embedder, Ray reports): the same corpus also built on Ray."""
    local, embedder = local_build
    root = tmp_path_factory.mktemp("ray")
    # The Ray build starts without one source and adds it in a second, incremental build.
    ray_corpus = Path(shutil.copytree(local.corpus_dir, root / "ray-corpus"))
    held_back = ray_corpus / f"{ADDED_LATER}.md"
    kept = held_back.read_text(encoding="utf-8")
    held_back.unlink()
    on_ray = local.replace(corpus_dir=ray_corpus, index_dir=root / "ray", ray="local", ray_workers=2,
                           ray_object_store_mb=128)
    first = build_index(on_ray, embedder)
    held_back.write_text(kept, encoding="utf-8")
    second = build_index(on_ray, embedder)
    return local, on_ray, embedder, (first, second)


def _opened(settings: Settings, embedder):
    return open_index(settings.index_dir, embedder.name, embedder.dimension)  # checks every checksum


def test_a_ray_build_writes_the_local_generation(built):
    local, on_ray, embedder, (first, second) = built
    mine, theirs = _opened(local, embedder), _opened(on_ray, embedder)
    try:
        n = mine.manifest.chunk_count
        assert theirs.manifest.chunk_count == n
        spans = [[(c.id, c.doc_id, c.start, c.end, c.section) for c in index.store.chunks(list(range(n)))]
                 for index in (mine, theirs)]
        assert spans[0] == spans[1]
        assert theirs.manifest.documents == mine.manifest.documents
        assert (theirs.manifest.index_kind, theirs.manifest.model_name, theirs.manifest.dimension) == (
            mine.manifest.index_kind, mine.manifest.model_name, mine.manifest.dimension)
        assert set(theirs.manifest.checksums) == set(mine.manifest.checksums)
        cosines = np.sum(np.asarray(load_vectors(mine.folder)) * np.asarray(load_vectors(theirs.folder)), axis=1)
        assert cosines.min() >= 0.9999
    finally:
        mine.store.close()
        theirs.store.close()


def test_an_incremental_ray_build_embeds_only_the_new_source(built):
    local, _, embedder, (first, second) = built
    index = _opened(local, embedder)
    try:
        new_chunks = index.manifest.documents[ADDED_LATER].chunks
        assert first.chunks_embedded == index.manifest.chunk_count - new_chunks
    finally:
        index.store.close()
    assert (second.added, second.chunks_embedded) == ((ADDED_LATER,), new_chunks)
    assert second.unchanged and not second.changed


def test_the_eval_metrics_are_the_same_on_milvus(built, tmp_path):
    _, on_ray, embedder, _ = built
    milvus = on_ray.replace(ray="", store="milvus", milvus_uri=str(tmp_path / "milvus.db"))
    report = build_index(milvus, embedder)  # publishes the served generation without embedding
    assert report.chunks_embedded == 0
    questions = load_questions(DEFAULT_QUESTIONS)
    results, answers = {}, {}
    for settings in (milvus.replace(store="local"), milvus):
        assistant = Assistant(settings, embedder)
        # Retrieval only: composing 306 answers is minutes of the reader's encoding, the same on both
        # stores (eval/compare_stores.py runs the whole eval on both and finds every answer metric equal).
        report = run_evaluation(assistant, questions, "questions.jsonl", MODES, recipes=False, answers=False)
        results[settings.store] = {(r.system, r.split): r.metrics for r in report.retrieval}
        answers[settings.store] = [_quoted(assistant.ask(q.question)) for q in questions[:ANSWERS_COMPARED]]
        assert isinstance(assistant._retriever().store, MilvusStore) == (settings.store == "milvus")
    assert {system for system, _ in results["milvus"]} == {"dense", "bm25", "hybrid"}
    for key, metrics in results["local"].items():
        assert metrics.keys() == results["milvus"][key].keys()
        for metric, value in metrics.items():
            assert results["milvus"][key][metric] == pytest.approx(value, abs=0.01), (key, metric)
    assert answers["milvus"] == answers["local"]
    assert sum(not abstained for _, _, abstained in answers["local"]) >= ANSWERS_COMPARED // 2


def _quoted(answer) -> tuple[str, tuple[tuple[str, int, int], ...], bool]:
    return answer.text, tuple((c.document.id, c.start, c.end) for c in answer.citations), answer.abstained


def _session_members(session_id: int) -> list[int]:
    """Processes in the given session (the killed build's Ray processes, if any survive it)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == session_id:
                    members.append(int(entry.name))
    return members


def _embedding_started(session_id: int) -> bool:
    for pid in _session_members(session_id):
        with contextlib.suppress(OSError):
            if (Path("/proc") / str(pid) / "cmdline").read_bytes().startswith(b"ray::MapWorker"):
                return True
    return False


def test_killing_a_ray_build_midway_leaves_the_served_generation(local_build, tmp_path):
    local, embedder = local_build
    index_dir = tmp_path / "index"
    shutil.copytree(local.index_dir, index_dir, ignore=shutil.ignore_patterns(".build.lock"))
    served = current_generation(index_dir).name
    corpus = Path(shutil.copytree(local.corpus_dir, tmp_path / "corpus"))
    (corpus / "owls.md").write_text("---\nid: owls\ntitle: Owls\n---\nOwls hunt mice at night.\n", encoding="utf-8")
    errors = tmp_path / "build.err"
    with open(errors, "wb") as stderr:
        build = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "build", "--ray", "--corpus", str(corpus), "--index", str(index_dir)],
            env={**os.environ, "RAG_RAY_WORKERS": "1", "RAG_RAY_OBJECT_STORE_MB": "128"},
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not _embedding_started(build.pid):
            assert build.poll() is None, errors.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the Ray build did not start embedding within 300 s"
            time.sleep(0.1)
        build.send_signal(signal.SIGKILL)
        build.wait()
    finally:
        build.kill()
        for pid in _session_members(build.pid):  # Ray processes the killed build started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert current_generation(index_dir).name == served
    _opened(local.replace(index_dir=index_dir), embedder).store.close()  # intact: every checksum holds
    report = build_index(local.replace(corpus_dir=corpus, index_dir=index_dir), embedder)
    assert (report.added, report.chunks_embedded) == (("owls",), 1)
    assert sorted(p.name for p in index_dir.glob("gen-*")) == sorted([served, report.generation])
