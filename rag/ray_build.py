"""Embedding a build's new chunks on Ray: a Ray Data pipeline with one model replica per actor.

Only the embedding fans out: chunking, the chunk store, BM25 and the generation switch stay in
the build process, so the output is the same generation (same manifest, same checksums) as a
local build, and a build killed at any instant leaves the served generation untouched.

``settings.ray`` picks the cluster: ``local`` starts a private Ray on this machine (no dashboard,
a small object store, its own temp folder, no usage reporting) and stops it afterwards; any
other value is an address to join (``ray://head:10001`` or ``head:6379``), whose nodes need this
package and the model installed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from rag.embedding import Embedder, SentenceTransformerEmbedder, load_embedder
from rag.errors import SettingsError
from rag.settings import Settings

Progress = Callable[[int, int], None]
LOCAL = "local"
# Rows per Ray Data block: at most this many, so a task is several batches (little scheduling
# overhead) and results stream back steadily; at least BLOCKS_PER_WORKER blocks per replica, so
# a small build still keeps every replica busy.
BLOCK_ROWS = 1024
BLOCKS_PER_WORKER = 4


class EmbedReplica:
    """A Ray Data actor holding one model replica; each call embeds one batch of chunk texts."""

    def __init__(self, make_embedder: Callable[[], Embedder]) -> None:
        self.embedder = make_embedder()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


def replica_factory(embedder: Embedder, settings: Settings) -> Callable[[], Embedder]:
    """How each actor gets its model: a real model is loaded where the actor runs, by the one
    function that chooses the encoder (a model object is too big to ship, and an ONNX session
    cannot be pickled at all); a light embedder (a test fake) travels pickled."""
    from rag.onnx_encoder import OnnxEmbedder

    if isinstance(embedder, SentenceTransformerEmbedder | OnnxEmbedder):
        return functools.partial(load_embedder, settings)
    return functools.partial(_same, embedder)


def _same(embedder: Embedder) -> Embedder:
    return embedder


@contextlib.contextmanager
def ray_cluster(address: str, object_store_mb: int) -> Iterator[None]:
    """Connected to Ray for the duration: a private local one (started, then stopped) or a cluster."""
    import ray

    if ray.is_initialized():  # a caller (a notebook, a test) already chose the cluster
        yield
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address == LOCAL:
        # Read by the Ray processes started below: no usage statistics (they would try to reach
        # the internet), and replicas at the build's own priority: Ray renices workers to 15 by
        # default, which on a busy shared machine starved them (172 s to the first batch).
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_worker_niceness", "0")
        # Its own folder, not /tmp/ray (another user's Ray), and short: Ray puts Unix sockets in it,
        # whose paths may not pass 107 bytes (a deep $TMPDIR failed the start).
        with tempfile.TemporaryDirectory(prefix="rag-ray-", dir="/tmp" if os.path.isdir("/tmp") else None) as temp:
            # Ray's processes listen on the node's address (it rewrites 127.0.0.1 to it, by design for
            # clusters); Ray 2.60 guards them with a per-cluster token, and this one lives for one build.
            ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=object_store_mb << 20,
                     _temp_dir=temp, **quiet)
            try:
                yield
            finally:
                ray.shutdown()
        return
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise SettingsError(f"cannot join the Ray cluster at {address!r} ({exc.__class__.__name__}); "
                            "check RAG_RAY / --ray, or use --ray without an address for a local Ray") from None
    try:
        yield
    finally:
        ray.shutdown()


def _blocks(texts: Sequence[str], workers: int, batch_size: int):
    """The texts with their rows as Arrow tables, one per Ray Data block."""
    import pyarrow as pa

    per_block = math.ceil(len(texts) / (workers * BLOCKS_PER_WORKER))
    size = max(batch_size, min(BLOCK_ROWS, math.ceil(per_block / batch_size) * batch_size))
    return [pa.table({"row": np.arange(start, min(start + size, len(texts)), dtype=np.int64),
                      "text": pa.array(texts[start : start + size], type=pa.string())})
            for start in range(0, len(texts), size)]


def _quiet_data_context() -> None:
    """No progress bars or periodic progress logs from Ray Data: the build has its own bar."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def embed_on_ray(texts: Sequence[str], embedder: Embedder, settings: Settings,
                 progress: Progress | None = None) -> np.ndarray:
    """Vectors of ``texts`` in their order, computed by Ray actors; ``progress(done, total)`` as
    batches stream back."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    if not texts:
        return vectors
    try:
        import ray
    except ImportError:
        raise SettingsError("Ray builds need the scale extra: pip install -e '.[scale]'") from None

    with ray_cluster(settings.ray, settings.ray_object_store_mb):
        workers = settings.ray_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        _quiet_data_context()
        dataset = ray.data.from_arrow(_blocks(texts, workers, settings.batch_size)).map_batches(
            EmbedReplica, fn_constructor_args=(replica_factory(embedder, settings),),
            batch_size=settings.batch_size, batch_format="numpy", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
        )
        done = 0
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            vectors[batch["row"]] = batch["vector"]  # blocks may finish out of order: place by row
            done += len(batch["row"])
            if progress:
                progress(done, len(texts))
    return vectors
