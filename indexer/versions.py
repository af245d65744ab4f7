"""Versioned, read-only index directories with an atomically switched `CURRENT` pointer.

    <root>/20261201T052233123456Z/   one complete index version (never modified once published)
    <root>/CURRENT                   the published version's name (one line)

A build writes into a fresh version directory and only then calls `publish`, which replaces
`CURRENT` with `os.replace` (atomic on POSIX): readers see the old version or the new one, never a
mix, and a build that dies midway leaves the previous version current. Workers poll
`current_version` and load the new directory when it changes (`app/services/index.py`).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

CURRENT_FILE = "CURRENT"
# UTC timestamp with microseconds: lexical order is build order.
VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"
VERSION_PATTERN = re.compile(r"^\d{8}T\d{12}Z$")


def _check(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise ValueError(f"not an index version name: {version!r}")
    return version


def version_path(root: Path, version: str) -> Path:
    return Path(root) / _check(version)


def list_versions(root: Path) -> list[str]:
    """Every version directory under root, oldest first (published or not)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and VERSION_PATTERN.match(p.name))


def new_version(root: Path) -> tuple[str, Path]:
    """A fresh, empty version directory to build into (not visible to readers until published)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        version = datetime.now(timezone.utc).strftime(VERSION_FORMAT)
        path = root / version
        try:
            path.mkdir()
            return version, path
        except FileExistsError:  # two builds in the same microsecond: take the next one
            continue


def publish(root: Path, version: str) -> None:
    """Make `version` current atomically (temp file in the same directory, then os.replace)."""
    root = Path(root)
    if not version_path(root, version).is_dir():
        raise FileNotFoundError(f"no index version {version} under {root}")
    with tempfile.NamedTemporaryFile("w", dir=root, prefix=".CURRENT-", delete=False, encoding="utf-8") as fh:
        fh.write(version + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(fh.name, root / CURRENT_FILE)


def current_version(root: Path) -> str | None:
    """The published version, or None when nothing was published yet (or its directory is gone)."""
    try:
        version = (Path(root) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not VERSION_PATTERN.match(version) or not (Path(root) / version).is_dir():
        return None
    return version


def prune(root: Path, keep: int = 3) -> list[str]:
    """Delete all but the `keep` newest versions, never the current one; returns what was removed.

    Directories newer than the current version (a build in progress elsewhere) count among the
    newest, so they are never pruned from under their builder.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    current = current_version(root)
    versions = list_versions(root)
    doomed = [v for v in versions[:-keep] if v != current]
    for version in doomed:
        shutil.rmtree(Path(root) / version, ignore_errors=True)
    return doomed
