"""Contact outcome rules (SPEC §3.3, §3.4, §2.3): examples and a hypothesis state machine over the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from herald.domain import rules
from herald.domain.billing import BillingPolicy
from herald.domain.campaign import ConversionRule
from herald.domain.rules import WHATSAPP_RANK, CallResult, ContactState, Conversation, RetryPolicy
from herald.domain.statuses import PHONE_STATUSES, WHATSAPP_STATUSES, AnsweredBy, CallStatus
from herald.domain.statuses import ContactStatus as S

NOW = datetime(2026, 1, 5, 15, tzinfo=UTC)
POLICY = RetryPolicy(retries=2, retry_delay=timedelta(minutes=60), failed_retry_limit=1)
CONVERT_ON_TAG = ConversionRule(tag="promise")
BILLING = BillingPolicy()


def _end(state: ContactState, status: CallStatus, by: AnsweredBy | None, **conversation: object) -> ContactState:
    result = CallResult(status=status, answered_by=by, duration=40, conversation=Conversation(**conversation))  # type: ignore[arg-type]
    return rules.call_ended(rules.dispatch(state), result, POLICY, CONVERT_ON_TAG, BILLING, NOW)


def test_human_answer_is_final_answered_or_converted() -> None:
    answered = _end(ContactState(), CallStatus.ENDED, AnsweredBy.HUMAN)
    assert (answered.status, answered.final, answered.calls, answered.billed_seconds) == (S.ANSWERED, True, 1, 40)
    converted = _end(ContactState(), CallStatus.ENDED, AnsweredBy.HUMAN, tags=frozenset({"promise"}))
    assert converted.status is S.CONVERTED and converted.tags == {"promise"}


def test_an_answer_without_tags_keeps_the_contacts_tag_set() -> None:
    # The same object, not only an equal one: a simulated run keeps every state in memory (herald.store.memory), and
    # one shared empty set per state instead of a new one keeps the garbage collector's full scans shorter.
    untagged = _end(ContactState(), CallStatus.ENDED, AnsweredBy.HUMAN)
    assert untagged.tags is rules.NO_TAGS
    tagged = ContactState(tags=frozenset({"callback"}))
    assert _end(tagged, CallStatus.ENDED, AnsweredBy.HUMAN).tags is tagged.tags
    assert _end(tagged, CallStatus.ENDED, AnsweredBy.HUMAN, tags=frozenset({"promise"})).tags == {"callback", "promise"}


def test_voicemail_retries_after_delay_until_the_limit() -> None:
    state = _end(ContactState(), CallStatus.ENDED, AnsweredBy.MACHINE)
    assert (state.status, state.retries, state.due_at, state.billed_seconds) == (
        S.RETRYING,
        1,
        NOW + timedelta(minutes=60),
        5,
    )
    state = _end(state, CallStatus.ENDED, AnsweredBy.MACHINE)
    assert (state.status, state.retries) == (S.RETRYING, 2)
    state = _end(state, CallStatus.ENDED, AnsweredBy.MACHINE)
    assert (state.status, state.retries, state.final, state.due_at) == (S.VOICEMAIL, 2, True, None)


def test_unknown_follows_the_billing_policy() -> None:
    as_machine = rules.call_ended(
        ContactState(status=S.SENDING),
        CallResult(CallStatus.ENDED, AnsweredBy.UNKNOWN, 40),
        POLICY,
        CONVERT_ON_TAG,
        BillingPolicy(unknown_as="machine"),
        NOW,
    )
    assert as_machine.status is S.RETRYING and as_machine.billed_seconds == 5
    assert _end(ContactState(), CallStatus.ENDED, AnsweredBy.UNKNOWN).status is S.ANSWERED


def test_failed_calls_requeue_once_then_stay_failed() -> None:
    for status in (CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED):
        state = _end(ContactState(), status, None)
        assert (state.status, state.failed_retries, state.due_at, state.final) == (S.QUEUE, 1, NOW, False)
        state = _end(state, status, None)
        assert (state.status, state.final) == (S.FAILED, True)
        assert state.billed_seconds == 0 and state.calls == 2


def test_follow_up_is_placed_in_the_window_and_outside_the_counters() -> None:
    follow_at = NOW + timedelta(hours=30)
    state = _end(ContactState(), CallStatus.ENDED, AnsweredBy.HUMAN, follow_up_at=follow_at)
    assert state.final and state.follow_up and state.due_at == follow_at and state.awaiting_attempt
    leased = rules.dispatch(state)
    assert leased.status is S.ANSWERED  # a follow-up does not reopen the contact
    done = rules.call_ended(
        leased,
        CallResult(
            CallStatus.ENDED, AnsweredBy.HUMAN, 10, Conversation(tags=frozenset({"promise"})), follow_up_call=True
        ),
        POLICY,
        CONVERT_ON_TAG,
        BILLING,
        NOW,
    )
    assert (done.status, done.follow_up, done.retries, done.failed_retries) == (S.CONVERTED, False, 0, 0)


def test_unanswered_follow_up_retries_then_gives_up() -> None:
    state = ContactState(status=S.ANSWERED, final=True, follow_up=True, due_at=NOW)
    missed = CallResult(CallStatus.NO_ANSWER, None, 0, follow_up_call=True)
    once = rules.call_ended(rules.dispatch(state), missed, POLICY, CONVERT_ON_TAG, BILLING, NOW)
    assert once.follow_up and once.follow_up_attempts == 1 and once.due_at == NOW + POLICY.retry_delay
    twice = rules.call_ended(rules.dispatch(once), missed, POLICY, CONVERT_ON_TAG, BILLING, NOW)
    assert not twice.follow_up and twice.status is S.ANSWERED and twice.final


def test_next_cycle_filters() -> None:
    statuses = frozenset({"answered"})
    tags = frozenset({"wrong_number"})
    assert rules.next_cycle(ContactState(status=S.CONVERTED, final=True), statuses, tags, NOW) is None
    assert rules.next_cycle(ContactState(status=S.ANSWERED, final=True), statuses, tags, NOW) is None
    tagged = ContactState(status=S.VOICEMAIL, final=True, tags=frozenset({"wrong_number"}))
    assert rules.next_cycle(tagged, statuses, tags, NOW) is None
    assert rules.next_cycle(ContactState(status=S.FAILED, final=True, opted_out=True), statuses, tags, NOW) is None
    again = rules.next_cycle(
        ContactState(status=S.VOICEMAIL, retries=2, failed_retries=1, final=True), statuses, tags, NOW
    )
    assert again is not None
    assert (again.status, again.retries, again.failed_retries, again.final, again.due_at) == (S.QUEUE, 0, 0, False, NOW)


# --- WhatsApp ----------------------------------------------------------------------------------------------------


def test_whatsapp_receipts_never_move_backwards() -> None:
    state = rules.dispatch(ContactState())
    state = rules.message_receipt(state, "sent", NOW, POLICY, True)
    state = rules.message_receipt(state, "read", NOW + timedelta(minutes=5), POLICY, True)
    late = rules.message_receipt(state, "delivered", NOW + timedelta(minutes=6), POLICY, True)
    assert late == state
    assert late.status is S.READ
    assert late.respond_by == NOW + timedelta(minutes=5) + POLICY.response_timeout


def test_whatsapp_no_response_retries_then_stays_final() -> None:
    policy = RetryPolicy(retries=1, failed_retry_limit=1, response_timeout=timedelta(hours=24))
    state = rules.message_receipt(rules.dispatch(ContactState()), "delivered", NOW, policy, True)
    early = rules.response_timeout(state, policy, NOW + timedelta(hours=1))
    assert early == state
    retry = rules.response_timeout(state, policy, NOW + timedelta(hours=24))
    assert (retry.status, retry.retries, retry.due_at) == (S.RETRYING, 1, NOW + timedelta(hours=24))
    again = rules.message_receipt(rules.dispatch(retry), "sent", NOW + timedelta(hours=25), policy, True)
    final = rules.response_timeout(again, policy, NOW + timedelta(hours=50))
    assert (final.status, final.final) == (S.SENT, True)


def test_whatsapp_reply_and_failure_and_opt_out() -> None:
    state = rules.message_receipt(rules.dispatch(ContactState()), "read", NOW, POLICY, True)
    accepted = rules.message_reply(state, True, Conversation(), CONVERT_ON_TAG)
    assert (accepted.status, accepted.final) == (S.ACCEPTED, True)
    converted = rules.message_reply(state, True, Conversation(tags=frozenset({"promise"})), CONVERT_ON_TAG)
    assert converted.status is S.CONVERTED
    assert rules.message_reply(accepted, False, Conversation(), CONVERT_ON_TAG) == accepted
    rejected = rules.message_reply(state, False, Conversation(), CONVERT_ON_TAG)
    assert rejected.status is S.REJECTED and rejected.final
    sending = rules.dispatch(ContactState())
    failed = rules.message_failed(sending, POLICY, NOW, True)
    assert (failed.status, failed.failed_retries) == (S.QUEUE, 1)
    assert rules.message_failed(state, POLICY, NOW, True) == state  # read messages cannot fail any more
    out = rules.opted_out(state)
    assert out.opted_out and out.final and out.status is S.READ and not out.awaiting_attempt


# --- a state machine over the phone rules ----------------------------------------------------------------------

OUTCOMES = st.sampled_from(
    [
        (CallStatus.ENDED, AnsweredBy.HUMAN),
        (CallStatus.ENDED, AnsweredBy.MACHINE),
        (CallStatus.ENDED, AnsweredBy.UNKNOWN),
        (CallStatus.BUSY, None),
        (CallStatus.NO_ANSWER, None),
        (CallStatus.FAILED, None),
    ]
)


class PhoneContact(RuleBasedStateMachine):
    """One contact driven through random call outcomes and cycles."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = RetryPolicy(retries=2, failed_retry_limit=1, follow_up_max_retries=1)
        self.state = ContactState(due_at=NOW)
        self.in_call = False
        self.calls_this_cycle = 0
        self.follow_up_calls = 0
        self.total_calls = 0
        self.was_final = False
        self.now = NOW

    @precondition(lambda self: not self.in_call and self.state.awaiting_attempt)
    @rule()
    def dispatch(self) -> None:
        self.in_call = True
        self.current_is_follow_up = self.state.follow_up and self.state.final
        self.state = rules.dispatch(self.state)

    @precondition(lambda self: self.in_call)
    @rule(outcome=OUTCOMES, tagged=st.booleans(), follow=st.booleans(), duration=st.integers(0, 600))
    def end_call(
        self, outcome: tuple[CallStatus, AnsweredBy | None], tagged: bool, follow: bool, duration: int
    ) -> None:
        status, by = outcome
        conversation = Conversation(
            tags=frozenset({"promise"}) if tagged else frozenset(),
            follow_up_at=self.now + timedelta(hours=5) if follow else None,
        )
        before = self.state
        result = CallResult(status, by, duration, conversation, follow_up_call=self.current_is_follow_up)
        self.now += timedelta(minutes=7)
        self.state = rules.call_ended(self.state, result, self.policy, CONVERT_ON_TAG, BILLING, self.now)
        self.in_call = False
        self.total_calls += 1
        if self.current_is_follow_up:
            self.follow_up_calls += 1
            # A follow-up never reopens a contact; at most it converts it.
            assert self.state.final
            assert self.state.status in (before.status, S.CONVERTED)
        else:
            self.calls_this_cycle += 1

    @precondition(lambda self: not self.in_call and self.state.final and not self.state.follow_up)
    @rule()
    def new_cycle(self) -> None:
        following = rules.next_cycle(self.state, frozenset(), frozenset(), self.now)
        if following is not None:
            self.state = following
            self.calls_this_cycle = 0
            self.was_final = False

    @invariant()
    def within_budget(self) -> None:
        assert self.calls_this_cycle <= 1 + self.policy.retries + self.policy.failed_retry_limit

    @invariant()
    def counters_within_limits(self) -> None:
        assert 0 <= self.state.retries <= self.policy.retries
        assert 0 <= self.state.failed_retries <= self.policy.failed_retry_limit
        assert self.state.calls == self.total_calls

    @invariant()
    def final_is_sticky_and_well_formed(self) -> None:
        assert self.state.status in PHONE_STATUSES
        if self.was_final:
            assert self.state.final
        if self.state.final:
            self.was_final = True
            assert self.state.status in (S.ANSWERED, S.CONVERTED, S.VOICEMAIL, S.FAILED)
        elif not self.in_call:
            assert self.state.status in (S.QUEUE, S.RETRYING) and self.state.due_at is not None

    @invariant()
    def converted_never_changes(self) -> None:
        if self.state.status is S.CONVERTED:
            assert self.state.final


TestPhoneContact = PhoneContact.TestCase
TestPhoneContact.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


EVENTS = st.sampled_from(["sent", "delivered", "read", "failed", "accept", "reject", "opt_out", "timeout"])


class WhatsAppContact(RuleBasedStateMachine):
    """One WhatsApp contact under receipts in any order, replies, failures and timeouts."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = RetryPolicy(retries=1, failed_retry_limit=1, response_timeout=timedelta(hours=24))
        self.state = rules.dispatch(ContactState(due_at=NOW))
        self.now = NOW
        self.sends = 1

    @rule(event=EVENTS, minutes=st.integers(0, 3000))
    def apply(self, event: str, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        before = self.state
        if event in ("sent", "delivered", "read"):
            self.state = rules.message_receipt(self.state, event, self.now, self.policy, True)
            if not before.final and before.status not in (S.QUEUE, S.RETRYING, S.FAILED):
                assert WHATSAPP_RANK[self.state.status] >= WHATSAPP_RANK[before.status]
        elif event == "failed":
            self.state = rules.message_failed(self.state, self.policy, self.now, True)
        elif event in ("accept", "reject"):
            self.state = rules.message_reply(self.state, event == "accept", Conversation(), CONVERT_ON_TAG)
        elif event == "opt_out":
            self.state = rules.opted_out(self.state)
        else:
            self.state = rules.response_timeout(self.state, self.policy, self.now)
        if before.final:
            # Final contacts only ever gain a reply (accepted/rejected) or an opt-out.
            assert self.state.final
        if self.state.awaiting_attempt and self.state.status in (S.QUEUE, S.RETRYING):
            self.state = rules.dispatch(self.state)
            self.sends += 1

    @invariant()
    def well_formed(self) -> None:
        assert self.state.status in WHATSAPP_STATUSES
        assert self.state.retries <= self.policy.retries
        assert self.state.failed_retries <= self.policy.failed_retry_limit
        assert self.sends <= 1 + self.policy.retries + self.policy.failed_retry_limit
        if self.state.opted_out:
            assert self.state.final and not self.state.awaiting_attempt


TestWhatsAppContact = WhatsAppContact.TestCase
TestWhatsAppContact.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
