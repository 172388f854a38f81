"""The tuning and BEIR runs' embedding cache: texts come back with the vectors they were stored with."""

from __future__ import annotations

import numpy as np

from rag.eval.cache import CachingEmbedder


class CountingEmbedder:
    """Encodes a text as (its length, 1) and counts the texts it was asked to encode."""

    name, dimension = "counting", 2

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded.extend(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_vectors_survive_a_round_trip_and_are_not_encoded_again(tmp_path):
    path = tmp_path / "cache.npz"
    first = CachingEmbedder(CountingEmbedder(), path)
    first.encode(["héllo wörld", "a b", "a b"])
    first.save()
    inner = CountingEmbedder()
    second = CachingEmbedder(inner, path)
    vectors = second.encode(["a b", "héllo wörld", "new"])
    assert vectors.tolist() == [[3.0, 1.0], [11.0, 1.0], [3.0, 1.0]]
    assert inner.encoded == ["new"]  # only the text the file did not hold


def test_nothing_is_written_when_nothing_was_added(tmp_path):
    path = tmp_path / "cache.npz"
    CachingEmbedder(CountingEmbedder(), path).save()
    assert not path.exists()
    cache = CachingEmbedder(CountingEmbedder(), path)
    cache.encode(["x"])
    cache.save()
    stamp = path.stat().st_mtime_ns
    reread = CachingEmbedder(CountingEmbedder(), path)
    reread.encode(["x"])
    reread.save()
    assert path.stat().st_mtime_ns == stamp


def test_a_text_holding_the_separator_is_encoded_but_not_stored(tmp_path):
    path = tmp_path / "cache.npz"
    cache = CachingEmbedder(CountingEmbedder(), path)
    assert cache.encode(["nul\0inside", "plain"]).tolist() == [[10.0, 1.0], [5.0, 1.0]]
    cache.save()
    stamp = path.stat().st_mtime_ns
    cache.save()  # the text left out is not taken for a new one
    assert path.stat().st_mtime_ns == stamp
    inner = CountingEmbedder()
    CachingEmbedder(inner, path).encode(["plain", "nul\0inside"])
    assert inner.encoded == ["nul\0inside"]


def test_the_older_layout_of_one_string_per_text_is_read(tmp_path):
    path = tmp_path / "cache.npz"
    np.savez(path, texts=np.array(["old text"]), vectors=np.array([[7.0, 7.0]], dtype=np.float32))
    inner = CountingEmbedder()
    assert CachingEmbedder(inner, path).encode(["old text"]).tolist() == [[7.0, 7.0]]
    assert inner.encoded == []
