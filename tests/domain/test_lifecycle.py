"""Campaign lifecycle actions (SPEC §2.1): every status × action."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from herald.domain.lifecycle import Action, InvalidTransition, after_contacts_added, after_cycle_end, apply_action
from herald.domain.statuses import CampaignStatus as S

ALLOWED = {
    (Action.ACTIVATE, S.PENDING): S.ACTIVE,
    (Action.ACTIVATE, S.READY): S.ACTIVE,
    (Action.ACTIVATE, S.COOLDOWN): S.ACTIVE,
    (Action.PAUSE, S.ACTIVE): S.INACTIVE,
    (Action.PAUSE, S.COOLDOWN): S.INACTIVE,
    (Action.PAUSE, S.INACTIVE): S.INACTIVE,
    (Action.RESUME, S.INACTIVE): S.ACTIVE,
    (Action.RESUME, S.ACTIVE): S.ACTIVE,
}


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("action", [Action.ACTIVATE, Action.PAUSE, Action.RESUME])
def test_every_action_from_every_status(action: Action, status: S) -> None:
    expected = ALLOWED.get((action, status))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            apply_action(status, False, action)
        assert caught.value.current_status is status
        assert status.value in str(caught.value)
        for target in caught.value.valid_targets:
            assert target is not status
    else:
        result = apply_action(status, False, action)
        assert result.status is expected
        assert result.changed == (expected is not status)


def test_finished_has_no_valid_targets() -> None:
    with pytest.raises(InvalidTransition) as caught:
        apply_action(S.FINISHED, False, "activate")
    assert caught.value.valid_targets == ()


def test_activate_is_not_idempotent() -> None:
    with pytest.raises(InvalidTransition) as caught:
        apply_action(S.ACTIVE, False, Action.ACTIVATE)
    assert caught.value.valid_targets == (S.INACTIVE,)


@pytest.mark.parametrize("status", list(S))
def test_archive_is_a_flag_from_any_status(status: S) -> None:
    result = apply_action(status, False, Action.ARCHIVE)
    assert result.status is status and result.archived
    assert not apply_action(status, True, Action.ARCHIVE).changed


def test_unknown_action() -> None:
    with pytest.raises(ValueError):
        apply_action(S.READY, False, "explode")


def test_automatic_transitions() -> None:
    assert after_contacts_added(S.PENDING) is S.READY
    assert after_contacts_added(S.ACTIVE) is S.ACTIVE
    assert after_cycle_end(1, 3, True) is S.COOLDOWN
    assert after_cycle_end(3, 3, True) is S.FINISHED
    assert after_cycle_end(1, 3, False) is S.FINISHED


class CampaignLifecycle(RuleBasedStateMachine):
    """Random sequences of user actions and automatic transitions, checked against SPEC §2.1's invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.status = S.PENDING
        self.archived = False
        self.iteration = 1
        self.max_iterations = 3
        self.ever_finished = False

    @rule(action=st.sampled_from(list(Action)))
    def user_action(self, action: Action) -> None:
        before = self.status
        try:
            result = apply_action(self.status, self.archived, action)
        except InvalidTransition as refused:
            assert action is not Action.ARCHIVE
            assert refused.current_status is before
            # Each valid target is one some other action would reach from here.
            reachable = {
                apply_action(before, self.archived, other).status
                for other in (Action.ACTIVATE, Action.PAUSE, Action.RESUME)
                if other is not action and (other, before) in ALLOWED
            }
            assert set(refused.valid_targets) == reachable - {before}
            return
        assert (action, before) in ALLOWED or action is Action.ARCHIVE
        assert result.archived >= self.archived  # archiving is never undone
        self.status, self.archived = result.status, result.archived

    @rule()
    def contacts_added(self) -> None:
        if self.status is not S.FINISHED:  # finished campaigns are read-only
            self.status = after_contacts_added(self.status)

    @precondition(lambda self: self.status is S.ACTIVE)
    @rule(cycles=st.booleans())
    def cycle_ends(self, cycles: bool) -> None:
        self.status = after_cycle_end(self.iteration, self.max_iterations, cycles)
        self.iteration += 1
        self.ever_finished |= self.status is S.FINISHED

    @precondition(lambda self: self.status is S.COOLDOWN)
    @rule()
    def cooldown_over(self) -> None:
        self.status = S.ACTIVE

    @invariant()
    def finished_is_final(self) -> None:
        assert not self.ever_finished or self.status is S.FINISHED
        assert self.iteration <= self.max_iterations + 1


TestCampaignLifecycle = CampaignLifecycle.TestCase
