"""A/B tests: send the slice, decide by what it achieved, send the winner to everyone else.

How a test runs:
1. The send (confirmed, and approved where needed, for the whole audience) freezes only the
   test's slice, `ab_test_share` percent of the audience, each member with their variant
   (ab_assignment.py); A is the mailing's own content, B to D its MailingVariants.
2. Once the slice is sent, the mailing waits (WAITING_FOR_WINNER) until `ab_wait_hours` after
   the send started; the sweep then calls `mailing_ab_decide` (so does `manage.py
   mailing_ab_decide`, and a campaigner with the send permission may pick a winner at any time).
3. The decision compares each variant's rate of `ab_metric` per message sent with a
   two-proportion z-test: the leader wins when every variant had `ab_min_deliveries` messages
   sent and the leader beats each other variant at `ab_confidence`. Without such a winner, A
   is sent, or the test waits for a campaigner, as `ab_without_winner` says.
4. The winner goes to the rest of the audience, counted again at that moment (anyone who left,
   was suppressed or paused is not in it), under the approval given for the send: the
   snapshot runs again and the unique (mailing, supporter) constraint skips the slice. It does
   not go when the slice drew complaints or unsubscribes past the breaker's rates; the mailing
   says why, and a campaigner may stop the test.
Every decision is in the audit log with the figures it rested on; the ledger records each
delivery's variant.
"""

import math
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from campaigns.models import Signature
from mailings.audit import mailing_audit_record
from mailings.models import Delivery, Mailing, MailingAuditEntry
from mailings.report_figures import DELIVERY_FIGURES
from mailings.sending import tasks
from mailings.sending.ab_assignment import ab_labels
from mailings.sending.control import MailingStateError

ABStatus = Mailing.ABStatus
Action = MailingAuditEntry.Action
Status = Mailing.Status

# The statuses a test is still open in: a winner may be chosen, or the test stopped.
OPEN = [ABStatus.TESTING, ABStatus.AWAITING_PICK, ABStatus.HELD]


@dataclass(frozen=True)
class VariantFigures:
    """What one variant's slice achieved: messages sent, and how many did what the metric asks."""

    label: str
    sent: int
    successes: int
    complaints: int
    unsubscribes: int

    @property
    def rate(self) -> float:
        return self.successes / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class ABDecision:
    """What a decision came to: the winner (None while a person must pick), and why."""

    winner: str | None
    metric: str
    # How sure the test is that the leader beats every other variant, 0 to 1.
    confidence: float
    leader: str
    significant: bool
    figures: list[VariantFigures]
    # Why the winner was not sent to the rest, if it was not.
    held_because: str = ""

    def as_json(self) -> dict:
        return {
            "winner": self.winner,
            "metric": self.metric,
            "confidence": round(self.confidence, 4),
            "leader": self.leader,
            "significant": self.significant,
            "held_because": self.held_because,
            "variants": [asdict(figures) for figures in self.figures],
        }


def ab_test_figures(mailing: Mailing) -> list[VariantFigures]:
    """Count each variant's slice from the ledger: sent, successes by the test's metric, and
    the complaints and unsubscribes the winner's send is held back for.

    The slice is small next to a whole audience and this runs once per decision, so it reads
    the ledger itself; the report's hourly figures are for the whole mailing.
    """
    slice_ = Delivery.objects.filter(DELIVERY_FIGURES["sent"], mailing=mailing).exclude(variant="")
    if mailing.ab_winner:
        # Once the rest is sent in the winner's name, only the slice speaks for the test: it
        # was frozen before the decision.
        slice_ = slice_.filter(created_at__lte=mailing.ab_decided_at)
    success = {
        Mailing.ABMetric.SIGNATURES: Q(
            Exists(
                Signature.objects.filter(
                    mailing_id=mailing.pk, supporter_id=OuterRef("supporter_id")
                )
            )
        ),
        Mailing.ABMetric.CLICKS: DELIVERY_FIGURES["unique_clicks"],
        Mailing.ABMetric.OPENS: DELIVERY_FIGURES["opens"],
    }[mailing.ab_metric]
    # Unsubscribes the mailing caused, through its link or header, as its report counts them.
    unsubscribed = Q(unsubscribed_at__isnull=False)
    rows = {
        row["variant"]: row
        for row in slice_.values("variant").annotate(
            sent=Count("pk"),
            successes=Count("pk", filter=success),
            complaints=Count("pk", filter=DELIVERY_FIGURES["complaints"]),
            unsubscribes=Count("pk", filter=unsubscribed),
        )
    }
    return [
        VariantFigures(
            label=label,
            sent=rows.get(label, {}).get("sent", 0),
            successes=rows.get(label, {}).get("successes", 0),
            complaints=rows.get(label, {}).get("complaints", 0),
            unsubscribes=rows.get(label, {}).get("unsubscribes", 0),
        )
        for label in ab_labels(mailing)
    ]


def two_proportion_confidence(leader: VariantFigures, other: VariantFigures) -> float:
    """Return how sure a one-sided two-proportion z-test is that `leader`'s rate is higher.

    1 - p, with the pooled standard error; 0.5 when the rates are equal, 0 with nothing sent.
    """
    if not leader.sent or not other.sent:
        return 0.0
    pooled = (leader.successes + other.successes) / (leader.sent + other.sent)
    error = math.sqrt(pooled * (1 - pooled) * (1 / leader.sent + 1 / other.sent))
    if error == 0:
        return 0.5
    z = (leader.rate - other.rate) / error
    return 1 - 0.5 * math.erfc(z / math.sqrt(2))


def ab_decision_compute(mailing: Mailing, *, figures: list[VariantFigures]) -> ABDecision:
    """Decide by the figures alone: the leader, its confidence, and whether it won."""
    leader = max(figures, key=lambda variant: (variant.rate, variant.label == "A"))
    others = [variant for variant in figures if variant.label != leader.label]
    confidence = min(two_proportion_confidence(leader, other) for other in others)
    enough = all(variant.sent >= mailing.ab_min_deliveries for variant in figures)
    significant = enough and confidence >= float(mailing.ab_confidence)
    if significant:
        winner = leader.label
    elif mailing.ab_without_winner == Mailing.ABWithoutWinner.SEND_A:
        winner = "A"
    else:
        winner = None
    return ABDecision(
        winner=winner,
        metric=mailing.ab_metric,
        confidence=confidence,
        leader=leader.label,
        significant=significant,
        figures=figures,
    )


def _held_because(figures: list[VariantFigures]) -> str:
    """Say why the slice's complaints or unsubscribes forbid sending to the rest, or ""."""
    sent = sum(variant.sent for variant in figures)
    if not sent:
        return ""
    complaints = sum(variant.complaints for variant in figures)
    unsubscribes = sum(variant.unsubscribes for variant in figures)
    reasons = []
    if complaints / sent > settings.RALLY_BREAKER_COMPLAINT_RATE:
        reasons.append(
            f"{complaints:,} complaints from {sent:,} messages sent "
            f"({complaints / sent:.2%}, the limit is {settings.RALLY_BREAKER_COMPLAINT_RATE:.2%})"
        )
    if unsubscribes / sent > settings.RALLY_BREAKER_UNSUBSCRIBE_RATE:
        reasons.append(
            f"{unsubscribes:,} unsubscribes from {sent:,} messages sent ({unsubscribes / sent:.2%}"
            f", the limit is {settings.RALLY_BREAKER_UNSUBSCRIBE_RATE:.2%})"
        )
    return "; ".join(reasons)


def _describe(decision: ABDecision, mailing: Mailing, *, picked_by_person: bool) -> str:
    rates = ", ".join(
        f"{variant.label} {variant.successes:,}/{variant.sent:,} ({variant.rate:.2%})"
        for variant in decision.figures
    )
    metric = Mailing.ABMetric(decision.metric).label.split(" (")[0].lower()
    if picked_by_person:
        how = f"{decision.winner} picked by a campaigner"
    elif decision.significant:
        how = f"{decision.winner} won at {decision.confidence:.1%} confidence"
    elif decision.winner:
        how = (
            f"no variant won at {float(mailing.ab_confidence):.0%} confidence "
            f"({decision.leader} led at {decision.confidence:.1%}): A, the control, is sent"
        )
    else:
        how = (
            f"no variant won at {float(mailing.ab_confidence):.0%} confidence "
            f"({decision.leader} led at {decision.confidence:.1%}): waiting for a campaigner"
        )
    return f"{how}. {metric}: {rates}."[:500]


def mailing_ab_decide(*, mailing_id: int, winner: str | None = None, actor=None) -> ABDecision:
    """Decide a mailing's A/B test now and send the winner to the rest of the audience.

    With `winner`, a campaigner's pick (the send permission's, checked by the caller); without,
    the figures decide. Refused, with the reason, for a mailing with no test, a test already
    decided or stopped, or a mailing not sending its test. Safe to call twice: the mailing's
    row is locked, and a second call finds the test decided.
    """
    with transaction.atomic():
        mailing = Mailing.objects.select_for_update().get(pk=mailing_id)
        _check_open(mailing, winner=winner)
        decision = ab_decision_compute(mailing, figures=ab_test_figures(mailing))
        if winner is not None:
            decision = ABDecision(**{**decision.__dict__, "winner": winner})
        detail = _describe(decision, mailing, picked_by_person=winner is not None)
        now = timezone.now()
        if decision.winner is None:
            mailing.ab_status = ABStatus.AWAITING_PICK
            mailing.ab_decision = decision.as_json()
            mailing.status_reason = "No variant won the A/B test: pick the winner to send it."
            mailing.save(update_fields=["ab_status", "ab_decision", "status_reason", "updated_at"])
            mailing_audit_record(
                mailing=mailing, action=Action.AB_DECIDED, actor=actor, detail=detail
            )
            return decision
        held_because = _held_because(decision.figures)
        if held_because:
            decision = ABDecision(**{**decision.__dict__, "held_because": held_because})
            mailing.ab_status = ABStatus.HELD
            mailing.ab_decision = decision.as_json()
            mailing.status_reason = (
                f"The winner, {decision.winner}, was not sent to the rest: the test drew "
                f"{held_because}."
            )[:500]
            mailing.save(update_fields=["ab_status", "ab_decision", "status_reason", "updated_at"])
            mailing_audit_record(
                mailing=mailing, action=Action.AB_HELD, actor=actor, detail=mailing.status_reason
            )
            return decision
        Mailing.objects.filter(pk=mailing.pk).update(
            status=Status.SENDING,
            ab_status=ABStatus.DECIDED,
            ab_winner=decision.winner,
            ab_decided_at=now,
            ab_decision=decision.as_json(),
            # The rest of the audience is frozen now; the batches wait for it.
            audience_snapshot_at=None,
            heartbeat_at=now,
            status_reason="",
            updated_at=now,
        )
        mailing_audit_record(mailing=mailing, action=Action.AB_DECIDED, actor=actor, detail=detail)
        tasks.mailing_snapshot_task.delay_on_commit(mailing.pk)
    return decision


def _check_open(mailing: Mailing, *, winner: str | None) -> None:
    if mailing.ab_test_share is None:
        raise MailingStateError(f"“{mailing}” has no A/B test.")
    if mailing.ab_status == ABStatus.DECIDED:
        raise MailingStateError(
            f"“{mailing}”'s A/B test was decided already: {mailing.ab_winner} went to the rest "
            "of the audience."
        )
    if not mailing.ab_status and mailing.status == Status.SENDING:
        raise MailingStateError(
            f"“{mailing}”'s A/B test has not started: its slice is being frozen. Try again in "
            "a moment."
        )
    if mailing.ab_status == ABStatus.STOPPED:
        raise MailingStateError(f"“{mailing}”'s A/B test was stopped: nothing more is sent.")
    if mailing.ab_status not in OPEN or mailing.status not in (
        Status.SENDING,
        Status.WAITING_FOR_WINNER,
    ):
        raise MailingStateError(
            f"“{mailing}” {mailing.status_phrase}: only a test being sent or waiting for its "
            "winner can be decided."
        )
    if winner is not None and winner not in ab_labels(mailing):
        raise MailingStateError(
            f"“{mailing}”'s A/B test has no variant {winner}: it tests "
            f"{', '.join(ab_labels(mailing))}."
        )


def mailing_ab_stop(*, mailing_id: int, actor=None) -> bool:
    """Stop an open A/B test: what is not sent yet, the rest of the audience included, never is.

    Return False when there was no open test to stop.
    """
    now = timezone.now()
    with transaction.atomic():
        stopped = Mailing.objects.filter(
            pk=mailing_id,
            ab_status__in=OPEN,
            status__in=[Status.SENDING, Status.WAITING_FOR_WINNER, Status.PAUSED],
        ).update(
            status=Status.CANCELLED,
            ab_status=ABStatus.STOPPED,
            status_reason="The A/B test was stopped: the rest of the audience was not sent.",
            finished_at=now,
            updated_at=now,
        )
        if stopped:
            Delivery.objects.filter(mailing_id=mailing_id, status=Delivery.Status.PENDING).update(
                status=Delivery.Status.CANCELLED, updated_at=now
            )
            mailing = Mailing.objects.only("pk", "name").get(pk=mailing_id)
            mailing_audit_record(mailing=mailing, action=Action.AB_STOPPED, actor=actor)
    return bool(stopped)


def mailing_ab_tests_decide_due() -> list[int]:
    """Decide every test whose slice is sent and whose wait is over; return their mailing ids.

    By the sweep. A test that waits for a person, or is held, is not decided again.
    """
    now = timezone.now()
    decided = []
    for mailing_id, started_at, wait_hours in Mailing.objects.filter(
        status=Status.WAITING_FOR_WINNER, ab_status=ABStatus.TESTING
    ).values_list("pk", "started_at", "ab_wait_hours"):
        if started_at is not None and started_at + timedelta(hours=wait_hours) > now:
            continue
        try:
            mailing_ab_decide(mailing_id=mailing_id)
        except MailingStateError:
            continue  # decided, or stopped, by someone else meanwhile
        decided.append(mailing_id)
    return decided
