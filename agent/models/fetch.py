"""Getting a commanded model file into the store (``assign`` and ``bench`` share this).

Download with Range resume, sha256 check, disk budget and LRU eviction are the
store's; this turns what can go wrong into a ``CommandFailed`` the ack carries.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.link.commands import CommandFailed
from agent.models.store import DownloadResult, ModelStore, StoreError
from shared.messages import AssignCommand, ModelSource

MB = 1_000_000


def fetch_model(
    store: ModelStore,
    source: ModelSource | AssignCommand,
    *,
    protected: set[str],
    on_download: Callable[[], None] | None = None,
    memory_budget_mb: float | None = None,
) -> DownloadResult:
    """The stored file of ``source``, downloaded and verified first if it is missing.

    ``protected`` hashes are never evicted to make room; ``on_download`` is called
    before a download starts (not for a cached file). A file larger than the memory
    budget could never load, so it is refused before any byte moves.
    """
    if memory_budget_mb is not None and source.size_bytes / MB > memory_budget_mb:
        raise CommandFailed(
            f"{source.model_id}: the file alone is {source.size_bytes / MB:.0f} MB, "
            f"memory budget is {memory_budget_mb:.0f} MB"
        )
    if on_download is not None and store.get(source.sha256) is None:
        on_download()
    try:
        return store.ensure(
            source.model_id, source.sha256, source.url, source.size_bytes, protected=protected
        )
    except StoreError as exc:
        raise CommandFailed(f"cannot fetch {source.model_id}: {exc}") from None
