"""A campaign forecast's figures: what one simulated run to the end gives, and the spread over several runs.

Pure: the simulation itself (a copy of the campaign run by the simulated engine) is `herald.engine.forecast`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from herald.domain.statuses import Channel

#: Contact statuses that count as reached (SPEC §9), by channel.
REACHED: dict[Channel, frozenset[str]] = {
    Channel.PHONE_CALL: frozenset({"answered", "converted"}),
    Channel.WHATSAPP: frozenset({"delivered", "read", "accepted", "converted"}),
}
ANSWERED_BY = ("human", "machine", "unknown")


def reach(channel: Channel, status_counts: Mapping[str, int]) -> int:
    """Contacts reached: phone `answered` + `converted`; WhatsApp `delivered` + `read` + `accepted` + `converted`."""
    return sum(count for status, count in status_counts.items() if status in REACHED[channel])


def conversions(status_counts: Mapping[str, int]) -> int:
    """Contacts converted."""
    return status_counts.get("converted", 0)


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One simulated run from the forecast's start to the campaign's end (or the horizon).

    Attempts and billing count only what the run did (what remains); reach and conversions are the campaign's
    totals at its end, contacts reached before the forecast included.
    """

    reach: int
    conversions: int
    attempts: int  # calls (phone) or messages (WhatsApp) made by the run
    days: float | None  # from the start to the campaign's end; None when it did not end within the horizon
    billed_seconds: Mapping[str, int] = field(default_factory=dict)  # phone: by answered_by
    calls_by_answered_by: Mapping[str, int] = field(default_factory=dict)  # phone: answered calls
    delivered: int = 0  # WhatsApp: messages with a delivery receipt
    read: int = 0
    replies: int = 0


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean, minimum and maximum of one figure over the runs."""

    mean: float
    min: float
    max: float


def spread(values: Sequence[float]) -> Spread:
    """The spread of `values` (at least one), the mean rounded to 2 decimals."""
    if not values:
        raise ValueError("a spread needs at least one value")
    return Spread(mean=round(sum(values) / len(values), 2), min=min(values), max=max(values))


@dataclass(frozen=True, slots=True)
class Summary:
    """The forecast over all runs."""

    runs: int
    finished_runs: int
    reach: Spread
    conversions: Spread
    attempts: Spread
    days: Spread | None  # over the runs that finished; None if none did
    billed_minutes: dict[str, Spread]  # phone, by answered_by
    calls_by_answered_by: dict[str, Spread]  # phone
    delivered: Spread
    read: Spread
    replies: Spread


def summarise(runs: Sequence[RunFigures], scale: float = 1.0) -> Summary:
    """Mean, min and max of every figure over `runs`; counts are multiplied by `scale` (a sampled forecast's
    contacts / sample), days are not."""
    if not runs:
        raise ValueError("a forecast needs at least one run")

    def counts(values: Sequence[float]) -> Spread:
        return spread([round(value * scale, 2) for value in values])

    finished = [run.days for run in runs if run.days is not None]
    return Summary(
        runs=len(runs),
        finished_runs=len(finished),
        reach=counts([run.reach for run in runs]),
        conversions=counts([run.conversions for run in runs]),
        attempts=counts([run.attempts for run in runs]),
        days=spread(finished) if finished else None,
        billed_minutes={who: counts([run.billed_seconds.get(who, 0) / 60 for run in runs]) for who in ANSWERED_BY},
        calls_by_answered_by={
            who: counts([run.calls_by_answered_by.get(who, 0) for run in runs]) for who in ANSWERED_BY
        },
        delivered=counts([run.delivered for run in runs]),
        read=counts([run.read for run in runs]),
        replies=counts([run.replies for run in runs]),
    )
