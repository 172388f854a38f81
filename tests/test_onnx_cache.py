"""The ONNX export cache: keyed by the model's weights, checked against its record, rebuilt when
missing or damaged, refused in one line when it cannot be made. The exporter is replaced by a
writer of fake bytes here; the real export runs in ``tests/test_onnx_encoder.py``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import rag.onnx_export
from rag.embedding import check_same_weights
from rag.errors import IndexStateError, SettingsError
from rag.onnx_cache import ONNX_FILE, ensure_export, find_export, model_sha256


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A sentence-transformers folder layout with mean pooling, 256 tokens, 384 dimensions."""
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256, "do_lower_case": false}')
    (folder / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}')
    (folder / "model.safetensors").write_bytes(b"weights-1")
    return folder


@pytest.fixture
def exports(monkeypatch) -> list[Path]:
    """Every export made, in order; each writes bytes naming its model file's content."""
    made: list[Path] = []

    def fake_export(model: Path, target: Path) -> str:
        made.append(target)
        target.write_bytes(b"onnx of " + (model / "model.safetensors").read_bytes())
        return "fake exporter"

    monkeypatch.setattr(rag.onnx_export, "export_onnx", fake_export)
    return made


def test_an_export_is_made_once_then_found_under_the_weights_hash(model_dir, tmp_path, exports):
    cache = tmp_path / "cache"
    assert find_export(model_dir, cache) is None
    first = ensure_export(model_dir, cache)
    again = ensure_export(model_dir, cache)
    assert len(exports) == 1
    assert first == again == find_export(model_dir, cache)
    assert first.folder == cache / "onnx" / model_sha256(model_dir, cache)
    assert first.onnx_path.read_bytes() == b"onnx of weights-1"
    assert (first.record.max_seq_length, first.record.dimension, first.record.exporter) == (256, 384, "fake exporter")
    assert [p.name for p in (cache / "onnx").iterdir() if not p.name.startswith(".")] == [first.folder.name]


def test_changed_weights_get_their_own_export(model_dir, tmp_path, exports):
    cache = tmp_path / "cache"
    before = ensure_export(model_dir, cache)
    (model_dir / "model.safetensors").write_bytes(b"weights-2, longer")
    after = ensure_export(model_dir, cache)
    assert before.folder != after.folder
    assert after.onnx_path.read_bytes() == b"onnx of weights-2, longer"
    assert before.record.model_sha256 != after.record.model_sha256 == model_sha256(model_dir, cache)


def test_a_damaged_export_is_made_again(model_dir, tmp_path, exports):
    cache = tmp_path / "cache"
    export = ensure_export(model_dir, cache)
    export.onnx_path.write_bytes(b"onnx of weights-X")  # same size, other bytes, new mtime
    assert find_export(model_dir, cache) is None
    assert ensure_export(model_dir, cache).onnx_path.read_bytes() == b"onnx of weights-1"
    assert len(exports) == 2


def test_a_touched_but_intact_export_is_kept(model_dir, tmp_path, exports):
    cache = tmp_path / "cache"
    export = ensure_export(model_dir, cache)
    os.utime(export.onnx_path, ns=(1, 1))
    assert find_export(model_dir, cache) == export
    assert len(exports) == 1


def test_an_export_recorded_for_other_weights_is_not_used(model_dir, tmp_path, exports):
    cache = tmp_path / "cache"
    export = ensure_export(model_dir, cache)
    record = json.loads((export.folder / "export.json").read_text())
    (export.folder / "export.json").write_text(json.dumps({**record, "model_sha256": "0" * 64}))
    assert find_export(model_dir, cache) is None


def test_a_failed_export_is_refused_in_one_line_and_leaves_nothing(model_dir, tmp_path, monkeypatch):
    def broken(model: Path, target: Path) -> str:
        target.write_bytes(b"half")
        raise RuntimeError("Unsupported: aten::something\nmore detail")

    monkeypatch.setattr(rag.onnx_export, "export_onnx", broken)
    cache = tmp_path / "cache"
    with pytest.raises(SettingsError, match=r"^exporting the model in '.*' to ONNX failed \(RuntimeError: "
                                            r"Unsupported: aten::something\); set RAG_ENCODER=sentence-transformers$"):
        ensure_export(model_dir, cache)
    assert [p.name for p in (cache / "onnx").iterdir()] == [".export.lock"]


def test_a_model_without_mean_pooling_is_refused_before_exporting(model_dir, tmp_path, exports):
    (model_dir / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}')
    with pytest.raises(SettingsError, match=r"^the ONNX encoder does mean pooling, the model in '.*' uses "
                                            r"\['pooling_mode_cls_token'\]; set RAG_ENCODER=sentence-transformers$"):
        ensure_export(model_dir, tmp_path / "cache")
    assert exports == []


def test_a_missing_model_folder_is_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"^model folder '.*nowhere' does not exist; set RAG_MODEL_PATH"):
        model_sha256(tmp_path / "nowhere", tmp_path / "cache")


class _Held:
    def __init__(self, weights: str) -> None:
        self.provenance = {"encoder": "onnx", "model_sha256": weights}


def test_vectors_of_other_weights_are_refused_and_unrecorded_ones_accepted():
    check_same_weights({"model_sha256": "a" * 64}, _Held("a" * 64))
    check_same_weights({}, _Held("a" * 64))  # an index from before the manifest recorded weights
    check_same_weights({"model_sha256": "a" * 64}, object())  # a test embedder records nothing
    with pytest.raises(IndexStateError, match=r"^index was built from other model weights \(sha256 aaaaaaaaaaaa…\) "
                                              r"than the configured model's \(bbbbbbbbbbbb…\); run `rag build`"):
        check_same_weights({"model_sha256": "a" * 64}, _Held("b" * 64))


def test_the_export_is_checked_against_its_file_size_before_use(model_dir, tmp_path, exports):
    cache = tmp_path / "cache"
    export = ensure_export(model_dir, cache)
    with open(export.onnx_path, "ab") as handle:
        handle.write(b"appended")
    assert find_export(model_dir, cache) is None
    assert (export.folder / ONNX_FILE).exists()  # found wanting, left for ensure_export to replace
