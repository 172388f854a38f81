"""``rag`` with the keyword embedder of conftest.py in place of the model, for the servers (``rag mcp``,
``rag serve``) that tests start in a subprocess, where a monkeypatch cannot reach.

Usage: ``python tests/keyword_rag.py mcp`` (any ``rag`` arguments).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import KeywordEmbedder  # noqa: E402

import rag.embedding  # noqa: E402 - after the path is set
from rag.cli import main  # noqa: E402

rag.embedding.load_embedder = lambda settings: KeywordEmbedder()

if __name__ == "__main__":
    sys.exit(main())
