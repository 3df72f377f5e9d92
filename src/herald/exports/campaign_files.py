"""Write every export a campaign has into a folder (used by `herald analyze CAMPAIGN_ID` and the demo)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from herald.exports.formats import available, export
from herald.exports.kinds import ExportKind
from herald.store.queries import Store


def write_all(store: Store, campaign_id: int, directory: Path, *, guard: bool = True) -> dict[ExportKind, Path]:
    """Write each export of the campaign as `<kind>.csv` in `directory`; returns the paths by kind."""
    directory.mkdir(parents=True, exist_ok=True)
    with store.read() as tx:
        kinds = available(tx.campaign(campaign_id))
    paths: dict[ExportKind, Path] = {}
    for kind in kinds:
        path = directory / f"{kind.value}.csv"
        export(store, campaign_id, kind, path, guard=guard)
        paths[kind] = path
    return paths


@dataclass(frozen=True, slots=True)
class CampaignFiles:
    """A campaign's exports written for analysis, with what the campaign says about their columns."""

    paths: dict[ExportKind, Path]
    tags: tuple[str, ...]


def write_campaign_files(store: Store, campaign_id: int, directory: Path) -> CampaignFiles:
    """The campaign's exports in `directory`, raw cells (no formula guard), for analysis."""
    paths = write_all(store, campaign_id, directory, guard=False)
    with store.read() as tx:
        tags = tx.campaign(campaign_id).config.agent.tags
    return CampaignFiles(paths, tuple(tags))


def export_campaign_files(campaign_id: int, directory: Path) -> CampaignFiles:
    """The campaign's exports (from the command line's database), raw cells, for analysis."""
    from herald.database import open_database

    store = open_database()
    try:
        return write_campaign_files(store, campaign_id, directory)
    finally:
        store.close()
