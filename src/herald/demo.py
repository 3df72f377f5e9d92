"""`herald demo`: a whole simulated campaign on a fresh SQLite file, with its exports and a report.

The same seed gives byte-identical exports: ids, outcomes and the virtual clock all derive from it.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from herald.domain.campaign import CampaignConfig, parse_campaign
from herald.domain.statuses import Channel
from herald.engine.campaigns import ImportReport, act, create_campaign, import_contacts
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine, RunStats
from herald.exports.campaign_files import write_all
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store.queries import Store

#: A Monday, 09:00 in Mexico City: the demo's virtual clock starts here so that runs repeat exactly.
DEMO_START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

_FIRST = (
    "Ana", "Luis", "María", "José", "Carmen", "Javier", "Lucía", "Diego", "Sofía", "Pedro", "Elena", "Miguel",
    "Valeria", "Andrés", "Camila", "Jorge", "Fernanda", "Ricardo", "Daniela", "Alejandro", "Gabriela", "Raúl",
)  # fmt: skip
_LAST = (
    "García", "Hernández", "López", "Martínez", "González", "Pérez", "Rodríguez", "Sánchez", "Ramírez", "Flores",
    "Torres", "Rivera", "Gómez", "Díaz", "Cruz", "Morales", "Reyes", "Jiménez", "Ruiz", "Ortiz",
)  # fmt: skip
# Mexican mobile area codes (Mexico City, Guadalajara, Monterrey, Puebla); 10-digit national numbers.
_AREAS = ("55", "33", "81", "222")


def example_config(channel: Channel) -> CampaignConfig:
    """The packaged example campaign for a channel."""
    name = "collections.yaml" if channel is Channel.PHONE_CALL else "whatsapp-reminder.yaml"
    text = resources.files("herald.examples").joinpath(name).read_text(encoding="utf-8")
    return parse_campaign(yaml.safe_load(text))


def synthetic_contacts(count: int, seed: int) -> bytes:
    """A contact CSV of `count` people with valid Mexican numbers in assorted national and E.164 formats."""
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["id", "contact", "name", "context", "balance"])
    used: set[str] = set()
    while len(used) < count:
        area = rng.choice(_AREAS)
        subscriber = "".join(rng.choice("0123456789") for _ in range(10 - len(area)))
        national = area + subscriber
        if national in used or subscriber[0] == "0":
            continue
        used.add(national)
        style = rng.randrange(4)
        if style == 0:
            shown = f"+52{national}"
        elif style == 1:
            shown = f"+52 {area} {subscriber[:-4]} {subscriber[-4:]}"
        elif style == 2:
            shown = f"({area}) {subscriber[:-4]}-{subscriber[-4:]}"
        else:
            shown = national
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        balance = rng.randrange(500, 25_000, 50)
        writer.writerow([f"CUST-{len(used):05d}", shown, name, f"Saldo vencido de ${balance:,} MXN", str(balance)])
    return buffer.getvalue().encode("utf-8")


_REPORTED = ("contacts", "calls", "sendout")


def write_demo_report(path: Path, files: list[Path]) -> Path:
    """The HTML report of the demo's exports, through the same analytics as `herald analyze --report`."""
    from herald.analytics.formats import open_export
    from herald.analytics.metrics import analyze
    from herald.analytics.report import write_report
    from herald.analytics.sql import connect

    con = connect()
    try:
        exports = [open_export(file) for file in files]
        write_report(path, exports, [analyze(export, con) for export in exports], con)
    finally:
        con.close()
    return path


@dataclass
class DemoResult:
    """What the demo made."""

    campaign_id: int
    config: CampaignConfig
    database: Path
    outputs: dict[str, Path]
    counts: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON object `herald demo --json` prints."""
        config = self.config
        return {
            "campaign": {
                "id": self.campaign_id,
                "name": config.name,
                "channel": config.channel.value,
                "retries": config.retries,
                "failed_retry_limit": config.failed_retry_limit,
                "cycles": config.cycles.model_dump(mode="json", exclude_none=True),
                "tags": list(config.agent.tags),
                "fields": [spec.name for spec in config.agent.fields],
            },
            "outputs": {name: str(path) for name, path in self.outputs.items()},
            "counts": self.counts,
        }


def simulate_campaign(
    store: Store,
    channel: Channel,
    contacts: int,
    seed: int,
    on_step: Callable[[Engine], None] | None = None,
    progress: Callable[[Engine], None] | None = None,
) -> tuple[int, CampaignConfig, ImportReport, RunStats]:
    """The demo campaign in `store`: created, loaded with synthetic contacts, run to the end on a virtual clock.

    Everything is seeded, so the same store kind, seed and size give the same campaign, exports included."""
    clock = VirtualClock(DEMO_START)
    ids = IdFactory(seed)
    config = example_config(channel)
    config = config.model_copy(update={"provider_options": {**config.provider_options, "seed": seed}})
    campaign_id = create_campaign(store, config, clock.now(), ids)
    imported = import_contacts(store, campaign_id, synthetic_contacts(contacts, seed), clock.now())
    act(store, campaign_id, "activate", clock.now())
    stats = Engine(store, Simulator(seed), clock, ids).run([campaign_id], on_step=on_step, progress=progress)
    return campaign_id, config, imported, stats


def run_demo(
    out: Path,
    channel: Channel = Channel.PHONE_CALL,
    contacts: int = 200,
    seed: int = 7,
    on_step: Callable[[Engine], None] | None = None,
    progress: Callable[[Engine], None] | None = None,
) -> DemoResult:
    """Create a fresh database in `out`, run a simulated campaign to the end and write its exports there."""
    out.mkdir(parents=True, exist_ok=True)
    database = out / "herald.db"
    for leftover in (database, out / "herald.db-wal", out / "herald.db-shm"):
        leftover.unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{database}")
    try:
        campaign_id, config, imported, stats = simulate_campaign(store, channel, contacts, seed, on_step, progress)
        outputs = {kind.value: path for kind, path in write_all(store, campaign_id, out).items()}
        with store.tx() as tx:
            campaign = tx.campaign(campaign_id)
            counts: dict[str, Any] = {
                "contacts": tx.contact_count(campaign_id),
                "rejected": len(imported.result.rejects),
                "status_counts": tx.status_counts(campaign_id),
                "attempts": stats.attempts,
                "events": stats.events,
                "cycles": campaign.cycle_iteration,
                "campaign_status": campaign.status.value,
                "simulated_days": round((stats.ended_at - DEMO_START).total_seconds() / 86400, 2)
                if stats.ended_at
                else 0,
            }
        outputs["report"] = write_demo_report(out / "report.html", [outputs[k] for k in _REPORTED if k in outputs])
        outputs["database"] = database
        return DemoResult(campaign_id=campaign_id, config=config, database=database, outputs=outputs, counts=counts)
    finally:
        store.close()
