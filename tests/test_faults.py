"""Fault tolerance of the index folder: killed builds, concurrent builds, damaged files.

A build killed at any instant must leave an index that opens and equals either the old or the
new generation; a second build must be refused with a clear message while one runs; a
truncated or tampered file must be caught on load with advice to rebuild, and a rebuild must
then repair it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import KeywordEmbedder, reseal

from rag import index_store
from rag.build import build_index
from rag.errors import IndexBusyError, IndexStateError
from rag.index_store import build_lock, current_generation, open_index, read_manifest
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
KILL_TRIALS = 24
WORDS = ("orbit", "rocket", "engine", "thrust", "stage", "fuel", "tank", "mass", "cat", "mouse", "hunt", "sleep",
         "dawn", "bird", "owl", "moon", "comet", "probe", "lander", "valve", "pump", "nozzle")

# A long-lived helper process: it imports the pipeline once, then forks one child per build, so a
# trial costs a fork instead of a Python start-up and the kill lands inside the build itself.
# (Forking happens in a process that never ran FAISS, so no OpenMP pool is inherited.)
WORKER = r"""
import os, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from pathlib import Path
from rag.build import build_index
from rag.settings import Settings
from conftest import KeywordEmbedder, reseal
import bm25s, faiss, Stemmer  # imported here, not in every child (importing starts no threads)
print("ready", flush=True)
for line in sys.stdin:
    corpus, index = line.split()
    pid = os.fork()
    if pid == 0:
        settings = Settings(corpus_dir=Path(corpus), index_dir=Path(index), data_dir=Path(index) / "data",
                            model_name=KeywordEmbedder.name, chunk_size=200, chunk_overlap=60)
        build_index(settings, KeywordEmbedder())
        os._exit(0)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
"""


def write_corpus(folder: Path, n_docs: int, seed: int) -> Path:
    """Markdown sources with front matter; the same seed gives the same bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        sections = [f"# Part {j}\n\n" + " ".join(rng.choice(WORDS) for _ in range(70)) + "." for j in range(5)]
        (folder / f"doc{i:03d}.md").write_text(f"---\nid: doc{i:03d}\ntitle: Document {i}\n---\n"
                                               + "\n\n".join(sections) + "\n", encoding="utf-8")
    return folder


def settings_for(corpus: Path, index: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=index, data_dir=index.parent / "data",
                    model_name=KeywordEmbedder.name, chunk_size=200, chunk_overlap=60)


def served_state(index_dir: Path) -> dict[str, str]:
    """Open the index as a reader would and return ``{doc_id: hash}``, checking it is whole."""
    index = open_index(index_dir, KeywordEmbedder.name, KeywordEmbedder().dimension)
    try:
        manifest = index.manifest
        assert index.vectors.ntotal == manifest.chunk_count == index.store.chunk_count()
        assert sorted(d.id for d in index.store.documents()) == sorted(manifest.documents)
        assert sum(e.chunks for e in manifest.documents.values()) == manifest.chunk_count
        return {doc_id: entry.hash for doc_id, entry in manifest.documents.items()}
    finally:
        index.store.close()


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """An old index, the corpus of a new one (one file changed, one added, one removed), both states."""
    root = tmp_path_factory.mktemp("kill")
    old_corpus = write_corpus(root / "old-corpus", 40, seed=1)
    new_corpus = root / "new-corpus"
    shutil.copytree(old_corpus, new_corpus)
    (new_corpus / "doc007.md").write_text("---\nid: doc007\ntitle: Changed\n---\n# Part 0\n\nA changed text "
                                          "about valves and pumps.\n", encoding="utf-8")
    (new_corpus / "doc013.md").unlink()
    write_corpus(root / "extra", 1, seed=9)
    shutil.move(root / "extra" / "doc000.md", new_corpus / "added.md")
    (new_corpus / "added.md").write_text((new_corpus / "added.md").read_text().replace("doc000", "added"))
    old_index = root / "old-index"
    build_index(settings_for(old_corpus, old_index), KeywordEmbedder())
    new_index = root / "new-index"
    shutil.copytree(old_index, new_index)
    build_index(settings_for(new_corpus, new_index), KeywordEmbedder())
    old, new = served_state(old_index), served_state(new_index)
    assert old != new
    return root, new_corpus, old_index, old, new


class Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", WORKER, str(REPO)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.process.stdout.readline().strip() == "ready"

    def start(self, corpus: Path, index: Path) -> int:
        self.process.stdin.write(f"{corpus} {index}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def wait(self) -> int:
        """Raw wait status of the last build."""
        return int(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def _new_generations(index_dir: Path, before: set[str]) -> set[str]:
    return {p.name for p in index_dir.glob("gen-*")} - before


def _wait_for_new_generation(index_dir: Path, before: set[str], timeout: float = 30.0) -> bool:
    """Poll until the build creates its generation folder (the start of the write phase)."""
    deadline = time.perf_counter() + timeout
    while not _new_generations(index_dir, before):
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.0005)
    return True


def test_a_build_killed_at_random_points_leaves_the_old_or_the_new_index(states):
    """SIGKILL at random instants: half anywhere in the build, half inside the write phase
    (after the new generation folder appears), where the switch to the new index happens."""
    root, new_corpus, old_index, old, new = states
    worker = Worker()
    try:
        index_dir = shutil.copytree(old_index, root / "timing")
        before = {p.name for p in index_dir.glob("gen-*")}
        began = time.perf_counter()
        worker.start(new_corpus, index_dir)
        assert _wait_for_new_generation(index_dir, before)
        writing_from = time.perf_counter()
        assert worker.wait() == 0
        whole, writing = time.perf_counter() - began, time.perf_counter() - writing_from

        rng = random.Random(20240607)
        outcomes: list[str] = []
        for trial in range(KILL_TRIALS):
            index_dir = shutil.copytree(old_index, root / f"trial-{trial}")
            before = {p.name for p in index_dir.glob("gen-*")}
            pid = worker.start(new_corpus, index_dir)
            if trial % 2:
                _wait_for_new_generation(index_dir, before)
                time.sleep(rng.uniform(0.0, 2.0 * writing))
            else:
                time.sleep(rng.uniform(0.0, 1.2 * whole))
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                os.kill(pid, signal.SIGKILL)
            worker.wait()
            state = served_state(index_dir)
            assert state in (old, new), f"trial {trial}: the served index is neither the old nor the new one"
            wrote = bool(_new_generations(index_dir, before))
            outcomes.append("new" if state == new else "old, mid-write" if wrote else "old, before writing")
            with build_lock(index_dir):  # the dead build's lock went with it
                pass
        counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
        assert counts.get("old, mid-write") and counts.get("new"), f"kills missed the write phase: {counts}"
        # The next build completes the change and clears the half-written generations.
        build_index(settings_for(new_corpus, index_dir), KeywordEmbedder())
        assert served_state(index_dir) == new
        assert len(list(index_dir.glob("gen-*"))) <= 2
    finally:
        worker.close()


@pytest.mark.parametrize("step", ["vectors", "faiss", "store", "bm25", "manifest", "fsync", "pointer", "cleanup"])
def test_a_build_that_dies_at_each_step_of_writing_leaves_a_whole_index(states, tmp_path, monkeypatch, step):
    """The same guarantee at every step boundary of ``write_generation`` (deterministic)."""
    _, new_corpus, old_index, old, new = states
    index_dir = shutil.copytree(old_index, tmp_path / "index")

    class Died(Exception):
        pass

    def die(*args, **kwargs):
        raise Died(step)

    targets = {"vectors": (index_store.np, "save"), "faiss": (index_store, "save_vector_index"),
               "store": (index_store, "write_store"), "bm25": (index_store.LexicalIndex, "build"),
               "manifest": (index_store.Manifest, "to_json"), "fsync": (index_store, "_fsync_dir"),
               "pointer": (index_store, "_point_current"), "cleanup": (index_store, "_remove_stale_generations")}
    monkeypatch.setattr(*targets[step], die)
    with pytest.raises(Died):
        build_index(settings_for(new_corpus, index_dir), KeywordEmbedder())
    monkeypatch.undo()
    assert served_state(index_dir) == (new if step == "cleanup" else old)
    build_index(settings_for(new_corpus, index_dir), KeywordEmbedder())
    assert served_state(index_dir) == new


HOLD_LOCK = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from rag.index_store import build_lock
with build_lock(Path(sys.argv[2])):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_second_build_is_refused_while_one_runs_then_proceeds(tiny_corpus, tmp_path):
    index_dir = tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(REPO), str(index_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexBusyError) as refused:
            build_index(settings_for(tiny_corpus, index_dir), KeywordEmbedder())
        assert str(refused.value) == (f"another build is running on {index_dir} (pid {holder.pid}); "
                                      "wait for it to finish and try again")
        assert current_generation(index_dir) is None  # the refused build wrote nothing
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    report = build_index(settings_for(tiny_corpus, index_dir), KeywordEmbedder())
    assert report.added == ("cats", "rockets")


BUILD_LIKE_THE_CLI = r"""
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from pathlib import Path
from rag.build import build_index
from rag.errors import RagError
from rag.settings import Settings
from conftest import KeywordEmbedder, reseal
settings = Settings(corpus_dir=Path(sys.argv[2]), index_dir=Path(sys.argv[3]), model_name=KeywordEmbedder.name,
                    data_dir=Path(sys.argv[3]) / "data", chunk_size=200, chunk_overlap=60)
print("ready", flush=True)
sys.stdin.readline()  # start line: both builds begin together, whatever their start-up took
try:
    build_index(settings, KeywordEmbedder())
except RagError as exc:
    print(f"rag: error: {exc}", file=sys.stderr)
    sys.exit(1)
"""


def test_two_builds_started_together_are_serialised(states, tmp_path):
    """Two real builds at once: exactly one runs, the other is refused, the index is whole."""
    _, new_corpus, old_index, _, new = states
    index_dir = shutil.copytree(old_index, tmp_path / "index")
    runs = [subprocess.Popen([sys.executable, "-c", BUILD_LIKE_THE_CLI, str(REPO), str(new_corpus), str(index_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        assert run.stdout.readline().strip() == "ready"
    for run in runs:
        run.stdin.write("go\n")
        run.stdin.flush()
    results = [run.communicate(timeout=60) + (run.returncode,) for run in runs]
    codes = sorted(code for _, _, code in results)
    refused = [err for _, err, code in results if code]
    assert codes == [0, 1] and "another build is running" in refused[0], results
    assert served_state(index_dir) == new


# ---------------------------------------------------------------- damaged files


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated faiss index": ("vectors.faiss", _truncate, "damaged (checksum mismatch)"),
    "tampered faiss index": ("vectors.faiss", _flip_byte, "damaged (checksum mismatch)"),
    "truncated chunk store": ("store.sqlite", _truncate, "damaged (checksum mismatch)"),
    "tampered chunk store": ("store.sqlite", _flip_byte, "damaged (checksum mismatch)"),
    "tampered vectors": ("vectors.npy", _flip_byte, "damaged (checksum mismatch)"),
    "deleted bm25 file": ("bm25/params.index.json", Path.unlink, "missing"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_index_file_is_caught_on_load_and_a_rebuild_repairs_it(settings, embedder, damage):
    build_index(settings, embedder)
    folder = current_generation(settings.index_dir)
    name, harm, state = DAMAGE[damage]
    harm(folder / name)
    with pytest.raises(IndexStateError) as caught:
        open_index(settings.index_dir, embedder.name, embedder.dimension)
    assert str(caught.value) == f"index file {name} in {folder.name} is {state}; run `rag build` to rebuild it"
    report = build_index(settings, embedder)  # the advice in the message must work
    assert report.chunk_count > 0 and not report.unchanged  # nothing reused from the damaged generation
    assert open_index(settings.index_dir, embedder.name, embedder.dimension).manifest.chunk_count \
        == report.chunk_count


def test_a_truncated_manifest_is_caught_and_a_rebuild_repairs_it(settings, embedder):
    build_index(settings, embedder)
    folder = current_generation(settings.index_dir)
    _truncate(folder / "manifest.json")
    with pytest.raises(IndexStateError) as caught:
        open_index(settings.index_dir, embedder.name, embedder.dimension)
    assert str(caught.value) == (f"index file manifest.json in {folder.name} is damaged (checksum mismatch); "
                                 "run `rag build` to rebuild it")
    build_index(settings, embedder)
    open_index(settings.index_dir, embedder.name, embedder.dimension)


def test_a_manifest_stripped_of_its_checksums_is_refused(settings, embedder):
    """Dropping the checksums must not turn verification off, even in a manifest sealed anew."""
    build_index(settings, embedder)
    folder = current_generation(settings.index_dir)
    body = json.loads((folder / "manifest.json").read_text())
    del body["checksums"]["vectors.faiss"]
    reseal(settings.index_dir, json.dumps(body))
    with pytest.raises(IndexStateError, match="has no checksum for vectors.faiss; run `rag build`"):
        open_index(settings.index_dir, embedder.name, embedder.dimension)


@pytest.mark.parametrize("pointer", ["", "gen-404", "../elsewhere"])
def test_a_bad_current_pointer_is_caught(settings, embedder, pointer):
    build_index(settings, embedder)
    (settings.index_dir / "CURRENT").write_text(pointer)
    with pytest.raises(IndexStateError, match="run `rag build`"):
        open_index(settings.index_dir, embedder.name, embedder.dimension)
    build_index(settings, embedder)
    assert read_manifest(current_generation(settings.index_dir)).chunk_count > 0


# ---------------------------------------------------------------- generations left by killed builds


def test_a_build_clears_generations_orphaned_by_killed_builds_but_never_the_served_one(settings, embedder):
    build_index(settings, embedder)
    (settings.corpus_dir / "owls.txt").write_text("Owls hunt at night.\n", encoding="utf-8")
    build_index(settings, embedder)  # the first generation stays as the previous one, for readers
    previous, served = sorted(p.name for p in settings.index_dir.glob("gen-*"))
    assert current_generation(settings.index_dir).name == served
    ancient = settings.index_dir / "gen-1"
    unfinished = settings.index_dir / f"gen-{time.time_ns()}"  # a killed build: written, never sealed
    for orphan in (ancient, unfinished):
        (orphan / "bm25").mkdir(parents=True)
        (orphan / "vectors.npy").write_bytes(b"half")
    report = build_index(settings, embedder)
    assert report.did_nothing  # an up-to-date build clears them too
    assert sorted(p.name for p in settings.index_dir.glob("gen-*")) == [previous, served]
    assert served_state(settings.index_dir)


def test_a_generation_being_written_under_the_lock_is_never_cleared(settings, embedder):
    build_index(settings, embedder)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(REPO), str(settings.index_dir)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        writing = settings.index_dir / f"gen-{time.time_ns()}"  # what the lock holder is writing
        writing.mkdir()
        with pytest.raises(IndexBusyError):
            build_index(settings, embedder)
        assert writing.is_dir()
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    build_index(settings, embedder)  # the holder died without sealing it: now it is an orphan
    assert not writing.exists()


def test_a_broken_pointer_leaves_every_generation_for_the_next_complete_build(settings, embedder):
    build_index(settings, embedder)
    (settings.index_dir / "CURRENT").write_text("gen-404")
    assert index_store.remove_orphans(settings.index_dir) == ()
    assert len(list(settings.index_dir.glob("gen-*"))) == 1
