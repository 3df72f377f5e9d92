"""Billing of calls by who answered (SPEC §5.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_MACHINE_CAP_SECONDS = 5

UnknownAs = Literal["human", "machine"]


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    """How calls are billed: machines are capped, `unknown` is billed as human or machine."""

    machine_cap_seconds: int = DEFAULT_MACHINE_CAP_SECONDS
    unknown_as: UnknownAs = "human"


def billed_seconds(duration: int, answered_by: str | None, policy: BillingPolicy = BillingPolicy()) -> int:
    """Billed seconds of one call: full for humans, capped for machines, per policy for `unknown`, 0 unanswered."""
    if not answered_by:
        return 0
    effective = policy.unknown_as if answered_by == "unknown" else answered_by
    if effective == "machine":
        return min(duration, policy.machine_cap_seconds)
    if effective == "human":
        return duration
    raise ValueError(f"unknown answered_by value: {answered_by!r}")


def billing_anomaly(
    duration: int, billed: int, answered_by: str | None, machine_cap_seconds: int = DEFAULT_MACHINE_CAP_SECONDS
) -> bool:
    """True when a call's billed seconds break the rules whatever the `unknown` policy was.

    human must equal duration; machine must equal min(duration, cap); unknown must equal one of those two;
    an unanswered call must bill 0.
    """
    if not answered_by:
        return billed != 0
    as_human = duration
    as_machine = min(duration, machine_cap_seconds)
    if answered_by == "human":
        return billed != as_human
    if answered_by == "machine":
        return billed != as_machine
    if answered_by == "unknown":
        return billed not in (as_human, as_machine)
    return True
