"""The application layer: the operations people perform, behind every front end.

The CLI, the page, the HTTP API and the MCP server translate their input into these calls and
the results into their output (with :mod:`rag.reporting`); none of them builds, opens or reads
the index itself. One :class:`Assistant` lives as long as its process: the model loads once, and
the served index generation is swapped when a build (here or in another process) replaces it,
while requests already running finish on the generation they started with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag import embedding
from rag.answer import AnswerSettings, compose_answer
from rag.conversation import Generator, require, rewrite_followup
from rag.corpus_rollback import unchanged_on_failure
from rag.embedding import Embedder
from rag.errors import IndexBusyError, IndexStateError, SettingsError, SourceError, UnknownSourceError
from rag.followup import Rewrite, Turn
from rag.index_store import Index, check_compatible, current_generation, open_index
from rag.memo_embedder import MemoEmbedder
from rag.modes import MODES
from rag.retrieve import Retriever, SearchRequest, validate_question
from rag.settings import Settings
from rag.stores import SearchStore, open_store
from rag.types import Answer, Document, Hit

if TYPE_CHECKING:  # builds and corpus writes are imported where they run: the query path never
    # loads the loaders (yaml, HTML and PDF parsers), 0.1 s of every cold `rag search`
    from rag.build import BuildReport, Progress


@dataclass(frozen=True)
class RequestOptions:
    """What one search or answer may choose; ``None`` takes the default from :class:`Settings`."""

    k: int | None = None  # passages returned by a search, or drawn on by an answer
    mode: str | None = None  # dense, bm25 or hybrid
    sources: tuple[str, ...] = ()  # restrict to these source ids; empty means all

    def __post_init__(self) -> None:
        # bool is an int in Python; "k": true is a mistake, not 1.
        if self.k is not None and (isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1):
            raise SettingsError(f"k must be a positive integer, got {self.k!r}")
        if self.mode is not None and self.mode not in MODES:
            raise SettingsError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        object.__setattr__(self, "sources", tuple(self.sources))


@dataclass(frozen=True)
class SourceMetadata:
    """Citation metadata a curator types for a new source; empty fields defer to the file's own."""

    id: str = ""
    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str = ""
    url: str = ""

    @classmethod
    def from_fields(cls, id: str | None = "", title: str | None = "", authors: Any = "",
                    year: int | str | None = None, venue: str | None = "", url: str | None = "") -> SourceMetadata:
        """From form or command-line text: authors split by the one rule, the year checked."""
        from rag.metadata import parse_authors  # writes only: the query path never loads yaml

        return cls(id=(id or "").strip(), title=(title or "").strip(), authors=parse_authors(authors or ()),
                   year=_year(year), venue=(venue or "").strip(), url=(url or "").strip())

    def as_mapping(self) -> dict[str, Any]:
        """Only the fields given, in the plain types ``sources.yaml`` holds."""
        values = {"id": self.id, "title": self.title, "authors": list(self.authors), "year": self.year,
                  "venue": self.venue, "url": self.url}
        return {name: value for name, value in values.items() if value not in (None, "", [])}


def _year(value: int | str | None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SourceError(f"year {value!r} is not a number; type a year like 2024") from None


@dataclass(frozen=True)
class Passage:
    """A ranked hit with the document it came from (what a front end shows of a search)."""

    hit: Hit
    document: Document


@dataclass(frozen=True)
class Source:
    """An indexed source and how many passages it has in the index."""

    document: Document
    chunks: int


@dataclass(frozen=True)
class IndexStatus:
    """The served index at a glance (what a status bar or a health check shows)."""

    generation: str
    model: str
    sources: int
    chunks: int
    built_at: str


@dataclass(frozen=True)
class Change:
    """A source added or removed, and the build that indexed the change."""

    document: Document
    report: BuildReport


@dataclass
class Assistant:
    """Search, ask, list, add, remove and build over one corpus and index folder.

    Safe to share between threads: queries run concurrently; corpus changes and builds run one
    at a time (a second is refused with :class:`IndexBusyError`, as a second build process is).
    """

    settings: Settings
    embedder_given: Embedder | None = None
    # How to load the model when none is given (default ``embedding.load_embedder``): the page
    # passes its process-wide cached loader, so the page can draw before the model has loaded.
    load_model: Callable[[], Embedder] | None = None
    _embedder: Embedder | None = field(default=None, init=False, repr=False)
    _index: Index | None = field(default=None, init=False, repr=False)
    _store: tuple[str, SearchStore] | None = field(default=None, init=False, repr=False)  # (generation, store)
    _loading: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _opening: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _writing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _storing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _llm: Generator | None = field(default=None, init=False, repr=False)
    _memo: MemoEmbedder | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------ model and index

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (listing sources never needs it)."""
        if self._embedder is None:
            with self._loading:
                if self._embedder is None:
                    load = self.load_model or functools.partial(embedding.load_embedder, self.settings)
                    self._embedder = self.embedder_given or load()
        return self._embedder

    @property
    def query_embedder(self) -> Embedder:
        """The model behind a memory of the sentences it encoded: queries see the same passages again."""
        if self._memo is None:
            model = self.embedder
            with self._loading:
                if self._memo is None:
                    self._memo = MemoEmbedder(model)
        return self._memo

    def has_index(self) -> bool:
        try:
            return current_generation(self.settings.index_dir) is not None
        except IndexStateError:
            return False  # a broken pointer: the next build repairs it

    def _served(self) -> Index:
        """The generation ``CURRENT`` names, reopened when a build has replaced it.

        While one request reopens, the others keep answering from the generation they hold.
        """
        served = self._index
        try:
            folder = current_generation(self.settings.index_dir)
        except IndexStateError:
            if served is None:
                raise
            return served  # a broken pointer must not stop a working server
        if served is not None and (folder is None or folder.name == served.generation):
            return served
        if not self._opening.acquire(blocking=served is None):
            return served  # type: ignore[return-value]  # another thread is opening the new one
        try:
            if self._index is None or self._index.generation != (folder.name if folder else None):
                model = self._embedder or self.embedder_given
                self._index = open_index(self.settings.index_dir, model.name if model else self.settings.model_name,
                                         model.dimension if model else None)
            return self._index
        finally:
            self._opening.release()

    @property
    def index(self) -> Index:
        """The served generation, for reports that record what they measured (eval, benchmarks).

        Front ends use the operations below instead.
        """
        return self._served()

    def _retriever(self) -> Retriever:
        index = self._served()
        check_compatible(index.manifest, self.embedder.name, self.embedder.dimension)
        embedding.check_same_weights(index.manifest.encoder, self.embedder)
        # Passages' sentences come from the generation's table; only the question is encoded.
        return Retriever(index, index.sentences.over(self.query_embedder), store=self._store_of(index))

    def _store_of(self, index: Index) -> SearchStore:
        """The configured store (``settings.store``) over ``index``, opened once per served
        generation: a Milvus store holds a connection."""
        with self._storing:
            if self._store is not None and self._store[0] == index.generation:
                return self._store[1]
            store = open_store(self.settings, index)
            if index is self._index:  # a request still on the previous generation does not evict the new one
                self._store = (index.generation, store)
            return store

    def warm_up(self) -> None:
        """Load the model and open the index now, so that the first request does not wait for them."""
        self.embedder.encode(["warm-up"])  # the first forward pass allocates the runtime's buffers
        self._served()

    def status(self) -> IndexStatus:
        index = self._served()
        manifest = index.manifest
        return IndexStatus(generation=index.generation, model=manifest.model_name,
                           sources=len(manifest.documents), chunks=manifest.chunk_count, built_at=manifest.built_at)

    # ------------------------------------------------------------ queries

    def check_question(self, question: str) -> str:
        """The question stripped, or a :class:`QuestionError` saying why it cannot be asked."""
        return validate_question(question, self.settings.max_question_chars)

    def request(self, question: str, options: RequestOptions, index: Index) -> SearchRequest:
        unknown = sorted(set(options.sources) - set(index.manifest.documents))
        if unknown:
            raise UnknownSourceError(f"unknown source id(s) {', '.join(map(repr, unknown))}; see `rag sources`")
        return SearchRequest(
            question=self.check_question(question),
            k=self.settings.k if options.k is None else options.k,
            mode=options.mode or self.settings.mode,
            sources=options.sources,
            candidates=self.settings.candidates,
            dense_weight=self.settings.dense_weight,
            fusion=self.settings.fusion,
        )

    def search(self, question: str, options: RequestOptions = RequestOptions()) -> list[Passage]:
        retriever = self._retriever()
        hits = retriever.search(self.request(question, options, retriever.index))
        return [Passage(hit, retriever.index.store.document(hit.chunk.doc_id)) for hit in hits]

    @property
    def answer_settings(self) -> AnswerSettings:
        return AnswerSettings(max_quotes=self.settings.max_quotes, abstain_below=self.settings.abstain_below)

    def ask(self, question: str, options: RequestOptions = RequestOptions(), *,
            answer_settings: AnswerSettings | None = None) -> Answer:
        """Retrieve, then compose a quoted, cited answer (or an abstention)."""
        retriever = self._retriever()
        index = retriever.index
        request = self.request(question, options, index)
        return compose_answer(request.question, retriever.search(request), index.store.document, retriever.embedder,
                              index.lexical, answer_settings or self.answer_settings, analyser=retriever.analyser)

    # ------------------------------------------------------------ follow-ups and prose (rag.conversation)

    def generator(self) -> Generator | None:
        """The language model ``RAG_LLM_URL`` names, or None: answers stay extractive."""
        if self._llm is None and self.settings.llm_url:
            self._llm = Generator.from_settings(self.settings, self.embedder)
        return self._llm

    def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        """A follow-up made standalone: by the model when one is configured, else by the rule."""
        documents = [source.document for source in self.sources()]
        return rewrite_followup(self.check_question(question), history, documents, self.generator(), self.settings)

    def ask_followup(self, question: str, history: Sequence[Turn],
                     options: RequestOptions = RequestOptions()) -> tuple[Rewrite, Answer]:
        """:meth:`ask` the standalone version of a follow-up, keeping to its carried source."""
        rewrite = self.rewrite(question, history)
        if rewrite.sources and not options.sources:
            options = dataclasses.replace(options, sources=rewrite.sources)
        return rewrite, self.ask(rewrite.question, options)

    def prose(self, answer: Answer):
        """A streamed, checked prose run over the answer's quotes (``rag.generate.ProseRun``)."""
        return require(self.generator()).run(answer)

    def document(self, source_id: str) -> Document | None:
        """An indexed source in full, or ``None`` when the index does not (or no longer) hold it."""
        try:
            return self._served().store.document(source_id)
        except KeyError:
            return None

    def sources(self) -> list[Source]:
        """What is indexed, by id."""
        index = self._served()
        entries = index.manifest.documents
        return [Source(d, entries[d.id].chunks if d.id in entries else 0) for d in index.store.documents()]

    def skipped(self) -> dict[str, str]:
        """Files in the corpus folder the served index leaves out: file name -> the one-line reason."""
        return dict(self._served().manifest.skipped)

    # ------------------------------------------------------------ changes

    @contextlib.contextmanager
    def _one_change(self) -> Iterator[None]:
        if not self._writing.acquire(blocking=False):
            raise IndexBusyError("another change to the index is running in this process; wait for it and try again")
        try:
            yield
        finally:
            self._writing.release()

    def build(self, progress: Progress | None = None, force: bool = False) -> BuildReport:
        """Bring the index in line with the corpus folder; the next request serves the result."""
        from rag.build import build_index

        with self._one_change():
            return build_index(self.settings, self.embedder, progress, force=force)

    def ensure_index(self, progress: Progress | None = None) -> BuildReport | None:
        """Build the index when there is none yet (a fresh clone); else do nothing."""
        return None if self.has_index() else self.build(progress)

    def add(self, file: Path, metadata: SourceMetadata = SourceMetadata(), progress: Progress | None = None,
            file_name: str | None = None) -> Change:
        """Copy a source into the corpus and index it; on any failure the corpus is as it was."""
        from rag.build import build_index
        from rag.corpus import add_source

        with self._one_change(), unchanged_on_failure(self.settings.corpus_dir):
            document = add_source(self.settings.corpus_dir, file, metadata.as_mapping(),
                                  self.settings.max_upload_bytes, file_name)
            return Change(document, build_index(self.settings, self.embedder, progress))

    def add_upload(self, name: str, data: bytes, metadata: SourceMetadata = SourceMetadata(),
                   progress: Progress | None = None) -> Change:
        """:meth:`add` for bytes received by a page or an API, stored under a safe file name."""
        from rag.corpus import safe_file_name

        file_name = safe_file_name(name)
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
            staged = Path(folder) / file_name
            staged.write_bytes(data)
            return self.add(staged, metadata, progress, file_name)

    def remove(self, source_id: str, progress: Progress | None = None) -> Change:
        """Delete a source from the corpus and the index; on any failure the corpus is as it was."""
        from rag.build import build_index
        from rag.corpus import remove_source

        with self._one_change(), unchanged_on_failure(self.settings.corpus_dir):
            document = remove_source(self.settings.corpus_dir, source_id, self.settings.max_upload_bytes)
            return Change(document, build_index(self.settings, self.embedder, progress))


def open_assistant(settings: Settings, embedder: Embedder | None = None, progress: Progress | None = None, *,
                   load_model: bool = True) -> tuple[Assistant, BuildReport | None]:
    """An assistant over the served index, building it first when there is none yet.

    The model loads now unless ``load_model`` is false (listing sources needs none; a build or a
    query then loads it when it must).
    """
    if embedder is None and load_model:
        embedder = embedding.load_embedder(settings)
    assistant = Assistant(settings, embedder)
    return assistant, assistant.ensure_index(progress)

