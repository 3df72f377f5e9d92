"""Campaign lifecycle: manual actions and automatic transitions (SPEC §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from herald.domain.statuses import CampaignStatus as S


class Action(StrEnum):
    """What a user may ask of a campaign."""

    ACTIVATE = "activate"
    PAUSE = "pause"
    RESUME = "resume"
    ARCHIVE = "archive"


class InvalidTransition(Exception):
    """An action not allowed from the campaign's status (HTTP 409 later)."""

    def __init__(self, action: str, current: S, valid_targets: tuple[S, ...]) -> None:
        self.action = action
        self.current_status = current
        self.valid_targets = valid_targets
        targets = ", ".join(valid_targets) or "none"
        super().__init__(f"cannot {action} a campaign that is {current}; valid targets from {current}: {targets}")


#: Status reached by each action from each status it is allowed from (no-ops included).
_ACTIONS: dict[Action, dict[S, S]] = {
    Action.ACTIVATE: {S.PENDING: S.ACTIVE, S.READY: S.ACTIVE, S.COOLDOWN: S.ACTIVE},
    Action.PAUSE: {S.ACTIVE: S.INACTIVE, S.COOLDOWN: S.INACTIVE, S.INACTIVE: S.INACTIVE},
    Action.RESUME: {S.INACTIVE: S.ACTIVE, S.ACTIVE: S.ACTIVE},
}


def valid_targets(current: S) -> tuple[S, ...]:
    """Statuses a user action can move a campaign to from `current` (no-ops excluded)."""
    targets = {table[current] for table in _ACTIONS.values() if current in table and table[current] != current}
    return tuple(sorted(targets))


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of an action: the new status, and whether `archived` is now set."""

    status: S
    archived: bool
    changed: bool


def apply_action(current: S, archived: bool, action: Action | str) -> ActionResult:
    """The status after a user action; raises InvalidTransition for a disallowed one."""
    act = Action(action)
    if act is Action.ARCHIVE:
        return ActionResult(status=current, archived=True, changed=not archived)
    table = _ACTIONS[act]
    if current not in table:
        raise InvalidTransition(act, current, valid_targets(current))
    target = table[current]
    return ActionResult(status=target, archived=archived, changed=target != current)


def after_contacts_added(current: S) -> S:
    """The first contact makes a pending campaign ready."""
    return S.READY if current is S.PENDING else current


def after_cycle_end(iterations_done: int, max_iterations: int, cycles_enabled: bool) -> S:
    """Cooldown while iterations remain, else finished."""
    if cycles_enabled and iterations_done < max_iterations:
        return S.COOLDOWN
    return S.FINISHED
