"""Which index version this worker serves, and the switch to a newer one without a failed request.

`flask index build` writes a new version beside the old one and then moves the `current` pointer
(see `indexer.versions`). Every worker notices the move within INDEX_RELOAD_SECONDS, loads the new
version in a background thread while it keeps answering from the old one, and swaps a single
reference when the new one is fully loaded. A version that fails to load is logged and skipped; the
old one stays.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from indexer.versions import current_version, version_path

from app.errors import ApiError
from app.services.pipeline import RetrievalIndex

log = logging.getLogger(__name__)

Loader = Callable[[Path], RetrievalIndex]


class IndexHolder:
    """Holds the loaded current index version of one process and follows the `current` pointer."""

    def __init__(self, root: Path, loader: Loader, reload_seconds: float):
        self.root = Path(root)
        self.loader = loader
        self.reload_seconds = reload_seconds
        self._index: RetrievalIndex | None = None
        self._checked_at = 0.0
        self._loading: str | None = None
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        return self._index.version if self._index else None

    def get(self) -> RetrievalIndex:
        """The index to answer this request with (loads synchronously only when none is loaded yet)."""
        if self._index is None:
            self._load_first()
        elif time.monotonic() - self._checked_at >= self.reload_seconds:
            self._check_for_new_version()
        if self._index is None:
            raise ApiError(503, "no retrieval index is available yet; run `flask index build`")
        return self._index

    def _load_first(self) -> None:
        with self._lock:
            if self._index is not None:
                return
            version = current_version(self.root)
            self._checked_at = time.monotonic()
            if version is None:
                return
            self._index = self._load(version)

    def _load(self, version: str) -> RetrievalIndex | None:
        try:
            t = time.perf_counter()
            index = self.loader(version_path(self.root, version))
            log.info("index version %s loaded in %.1f s", version, time.perf_counter() - t)
            return index
        except Exception:  # noqa: BLE001 - a broken version must not take the service down
            log.exception("index version %s failed to load; keeping %s", version, self.version)
            self._failed.add(version)
            return None

    def _check_for_new_version(self) -> None:
        self._checked_at = time.monotonic()
        version = current_version(self.root)
        if version is None or version == self.version or version in self._failed or self._loading:
            return
        self._loading = version
        threading.Thread(target=self._swap_in, args=(version,), daemon=True, name=f"load-index-{version}").start()

    def _swap_in(self, version: str) -> None:
        try:
            index = self._load(version)
            if index is not None:
                self._index = index  # one reference assignment: requests see the old or the new, whole
                log.info("now serving index version %s", version)
        finally:
            self._loading = None

    def wait_until_current(self, timeout: float = 60.0) -> bool:
        """Block until the pointer's version is served (tests and start-up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wanted = current_version(self.root)
            if wanted is not None and wanted == self.version:
                return True
            if wanted in self._failed:
                return False
            self._checked_at = 0.0
            self.get() if self._index is None else self._check_for_new_version()
            time.sleep(0.05)
        return False
