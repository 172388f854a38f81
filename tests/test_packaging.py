"""The distribution holds every package of the project: a plain (non-editable) install once missed
rag.reader and rag.eval because pyproject listed packages by hand."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatchcase

from rag.settings import REPO_ROOT


def test_every_rag_package_is_in_the_distribution():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]  # setuptools' fnmatch patterns
    packages = {".".join(init.parent.relative_to(REPO_ROOT).parts) for init in (REPO_ROOT / "rag").rglob("__init__.py")}
    assert {"rag", "rag.reader", "rag.eval", "rag.stores"} <= packages
    assert [p for p in sorted(packages) if not any(fnmatchcase(p, pattern) for pattern in include)] == []
