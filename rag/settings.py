"""One typed settings object: every default lives here, unknown names are rejected.

The environment is read only by :meth:`Settings.from_env`, which the CLI and the page call
at their edge; library code receives a ``Settings`` value and never looks at ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import SettingsError
from rag.modes import Mode

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENCODERS = ("onnx", "sentence-transformers")


def _describe(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    """Knobs for building and querying the index."""

    corpus_dir: Path = _describe(REPO_ROOT / "corpus", "Folder of source files and sources.yaml.")
    index_dir: Path = _describe(REPO_ROOT / "index", "Folder holding index generations.")
    data_dir: Path = _describe(REPO_ROOT / "data", "Folder for feedback and other user data.")
    model_name: str = _describe(DEFAULT_MODEL, "Name recorded in the manifest for the embedder.")
    model_path: str = _describe(
        "", "Local model directory; empty means the packaged all-MiniLM-L6-v2."
    )
    encoder: str = _describe(
        "onnx", "How texts are embedded: onnx (the model's ONNX export, no torch at query time; made "
        "on first need) or sentence-transformers (the reference; same vectors, 5-9 s more to start)."
    )
    cache_dir: Path = _describe(REPO_ROOT / ".cache", "Folder for rebuildable files: the model's ONNX export.")
    batch_size: int = _describe(32, "Texts per embedding batch.")
    chunk_size: int = _describe(600, "Target chunk length in characters.")
    chunk_overlap: int = _describe(120, "Characters of trailing sentences repeated in the next chunk.")
    mode: str = _describe("hybrid", "Default retrieval mode: dense, bm25 or hybrid.")
    k: int = _describe(5, "Hits returned by a search.")
    candidates: int = _describe(50, "Candidates each retriever contributes to fusion.")
    dense_weight: float = _describe(0.5, "Weight of the dense score in hybrid fusion (0..1).")
    fusion: str = _describe("convex", "Hybrid fusion: convex (normalised scores) or rrf (ranks).")
    max_quotes: int = _describe(3, "Most quotations in one answer.")
    abstain_below: float = _describe(
        0.35, "Evidence support under which the answer abstains before the decline model weighs it; "
        "chosen with the model on the tuning split (eval/reports/decline-tuning.json)."
    )
    max_question_chars: int = _describe(2000, "Longer questions are refused.")
    # Optional prose generator: any OpenAI-compatible chat-completions server (Ollama, llama.cpp...).
    llm_url: str = _describe("", "Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1; "
                             "empty means answers stay extractive.")
    llm_model: str = _describe("", "Model name sent to the LLM server (e.g. smollm2:135m for Ollama).")
    llm_api_key: str = field(default="", repr=False, metadata={"doc": "Bearer token for the LLM server, if any."})
    llm_timeout: float = _describe(60.0, "Seconds a whole generated reply may take before the quotes are shown "
                                   "instead.")
    llm_max_tokens: int = _describe(256, "Most tokens the model may write per reply.")
    # Calibrated on the tuning split only (python eval/calibrate_support.py ->
    # eval/reports/support-calibration.json): the lowest threshold that rejects 95% of wrong citations
    # (111 tune claims: keeps 99.1% of right ones); held-out test (96): keeps 97.9%, rejects 97.9%.
    sentence_support_min: float = _describe(
        0.68, "Support a generated sentence needs from the passages it cites to be kept; calibrated on the "
        "tuning split by eval/calibrate_support.py (eval/reports/support-calibration.json)."
    )
    # Measured by python eval/followups.py --llm (eval/reports/followups.json, 33 follow-ups, hit@1):
    # the rule scores 0.818 with each choice; the LLM rewrite 0.697 with previous, 0.545 with named or none.
    followup_sources: str = _describe(
        "previous", "Source a rewritten follow-up keeps its search to: previous (one it names or points at, e.g. "
        "'the second one', else the previous answer's), named (only one it names or points at) or none (the "
        "focus is carried as text only)."
    )
    max_upload_bytes: int = _describe(20 * 1024 * 1024, "Larger source files are refused.")
    server_threads: int = _describe(
        2, "Requests `rag serve` and `rag mcp` run at once (model work runs off the event loop, in this "
        "many threads); sized for 2 cores, where a third thread only queues (bench/results/serve.json)."
    )
    store: str = _describe("local", "Where the searchable index lives: local (FAISS + bm25s files) or milvus.")
    milvus_uri: str = _describe(
        "", "Milvus to use with store=milvus: a *.db file runs Milvus Lite in-process, http://host:19530 "
        "a Milvus server or cluster; empty means <index_dir>/milvus.db."
    )
    milvus_alias: str = _describe(
        "rag", "Milvus alias of the served collection; each generation's collection is <alias>_gen_<n>."
    )
    milvus_timeout: float = _describe(10.0, "Seconds any Milvus call may take before it fails with an error.")
    ray: str = _describe(
        "", "Embed builds on Ray: empty = no, 'local' = start a private local Ray, else a cluster address "
        "(e.g. ray://head:10001 or head:6379)."
    )
    ray_workers: int = _describe(0, "Model replicas (Ray actors) for a Ray build; 0 = one per CPU Ray offers.")
    ray_object_store_mb: int = _describe(
        256, "Object store of a local Ray; Ray's default (30% of RAM) is too much on a small machine."
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode.parse(self.mode))  # a Mode, still equal to its string
        if self.encoder not in ENCODERS:
            raise SettingsError(f"encoder {self.encoder!r} is not one of {', '.join(ENCODERS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise SettingsError(f"dense_weight {self.dense_weight!r} must lie in [0, 1]")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise SettingsError(
                f"chunk_overlap {self.chunk_overlap} must be at least 0 and smaller than chunk_size "
                f"{self.chunk_size}"
            )
        from rag.followup import SOURCE_CARRY
        from rag.stores import STORES  # the registry's keys are the one list of backends

        if self.followup_sources not in SOURCE_CARRY:
            raise SettingsError(f"followup_sources {self.followup_sources!r} is not one of {', '.join(SOURCE_CARRY)}")

        if self.store not in STORES:
            raise SettingsError(f"store {self.store!r} is not one of {', '.join(STORES)}")
        if self.ray_workers < 0 or self.milvus_timeout <= 0:
            raise SettingsError(f"ray_workers ({self.ray_workers!r}) must be at least 0 and milvus_timeout "
                                f"({self.milvus_timeout!r}) positive")
        if self.llm_url and not self.llm_url.startswith(("http://", "https://")):
            raise SettingsError(f"llm_url {self.llm_url!r} must start with http:// or https:// (an OpenAI-compatible "
                                "base URL, e.g. http://127.0.0.1:11434/v1)")
        if self.llm_timeout <= 0:
            raise SettingsError(f"llm_timeout must be a positive number of seconds, got {self.llm_timeout!r}")
        for name in ("batch_size", "chunk_size", "k", "candidates", "max_question_chars", "max_upload_bytes",
                     "ray_object_store_mb", "server_threads", "llm_max_tokens"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from names and values, coercing strings; unknown names are an error."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(fields)}"
            )
        coerced = {}
        for name, value in values.items():
            kind = type(fields[name].default)
            try:
                coerced[name] = kind(value)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"setting {name}={value!r} is not a valid {kind.__name__}") from exc
        return cls(**coerced)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``RAG_<NAME>`` variables (e.g. ``RAG_INDEX_DIR``), then apply overrides."""
        environ = os.environ if environ is None else environ
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {
            name: environ[f"RAG_{name.upper()}"] for name in names if f"RAG_{name.upper()}" in environ
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)

    @property
    def milvus_target(self) -> str:
        """The Milvus URI in use: the setting, or Milvus Lite in the index folder."""
        return self.milvus_uri or str(self.index_dir / "milvus.db")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
