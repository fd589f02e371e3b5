"""Writes that concern supporters: upsert, consent, unsubscribe, preferences."""

import ipaddress
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from config.db import insert_unless_exists

from .models import ConsentRecord, Language, Supporter
from .signals import (
    supporter_subscribed,
    supporter_suppressed,
    supporter_unsubscribed,
    unsubscribed_by_mailing,
)

# Fields a later sign-up may fill in when they are still blank, but never overwrite: anyone can
# type anyone's email into a form, so a known supporter's details are not theirs to change.
FILLABLE_FIELDS = ("first_name", "last_name", "country", "postcode")
# Statuses that fresh consent lifts back to subscribed: someone who left may opt in again, and
# so may someone the sunset took off the list for silence (they have spoken now), but consent
# does not make a bounced (dead) or complaining (hostile) mailbox safe to mail.
CONSENT_LIFTS = (Supporter.Status.UNSUBSCRIBED, Supporter.Status.SUNSET)


def supporter_upsert(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    country: str = "",
    postcode: str = "",
    language: str = "",
    source: str = "",
    subscribed: bool = True,
) -> tuple[Supporter, bool]:
    """Return the supporter with this email, creating them if new; and whether they were created.

    `subscribed` sets the status of a new supporter only: someone who signs without agreeing to
    emails is recorded but not mailed. An existing supporter's status is changed only by consent
    (consent_record_create) or by leaving (supporter_unsubscribe).

    Safe under concurrency: two requests creating the same email race on the database's unique
    constraint, and the loser reads the winner's row. New supporters cost one statement: in a
    surge most signers are new, so the insert comes first.
    """
    email = email.strip().lower()
    now = timezone.now()
    values = {
        # Given here, not left to the database default, so the returned row holds it.
        "uuid": uuid.uuid4(),
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "country": country,
        "postcode": postcode,
        "language": language or Supporter._meta.get_field("language").default,
        "source": source,
        "status": Supporter.Status.SUBSCRIBED if subscribed else Supporter.Status.UNSUBSCRIBED,
        "created_at": now,
        "updated_at": now,
    }
    supporter_id = insert_unless_exists(Supporter, **values)
    if supporter_id is not None:
        supporter = Supporter(pk=supporter_id, **values)
        supporter._state.adding = False
        return supporter, True
    supporter = Supporter.objects.get(email=email)
    given = {
        "first_name": first_name,
        "last_name": last_name,
        "country": country,
        "postcode": postcode,
    }
    changed = [name for name in FILLABLE_FIELDS if given[name] and not getattr(supporter, name)]
    for name in changed:
        setattr(supporter, name, given[name])
    if changed:
        supporter.save(update_fields=[*changed, "updated_at"])
    return supporter, False


def truncate_ip(ip: str | None) -> str | None:
    """Return the network part of an IP address (IPv4 /24, IPv6 /48), or None if it is invalid."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def consent_record_create(
    *,
    supporter: Supporter,
    wording: str,
    source_url: str = "",
    ip: str | None = None,
    resubscribe: bool = True,
) -> ConsentRecord:
    """Record that a supporter agreed to `wording`, and subscribe them again if they had left.

    `resubscribe=False` skips that step: for a supporter just created subscribed, or one whose
    address is still to be confirmed (signature_confirm subscribes them then).
    """
    record = ConsentRecord.objects.create(
        supporter=supporter,
        wording=wording,
        source_url=source_url[:500],
        ip_truncated=truncate_ip(ip),
    )
    if resubscribe:
        supporter_subscribe(supporter_id=supporter.pk)
    return record


def supporter_subscribe(*, supporter_id: int) -> bool:
    """Subscribe a supporter who is unsubscribed, on fresh consent; return whether they were.

    Fresh consent from someone who unsubscribed is a new opt-in; see CONSENT_LIFTS.
    """
    subscribed = Supporter.objects.filter(pk=supporter_id, status__in=CONSENT_LIFTS).update(
        status=Supporter.Status.SUBSCRIBED, unsubscribed_at=None, updated_at=timezone.now()
    )
    if subscribed:
        supporter_subscribed.send(sender=Supporter, supporter_id=supporter_id)
    return bool(subscribed)


def supporter_unsubscribe(*, supporter_id: int, mailing_id: int | None = None) -> bool:
    """Unsubscribe a supporter; return False if there was nobody subscribed to unsubscribe.

    `mailing_id` names the mailing whose message they unsubscribed from, when its token says
    so: the mailing's report counts it (the `unsubscribed_by_mailing` signal, sent in the
    same transaction). Deliveries not yet sent are skipped by the send queue, which checks
    status when it claims.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = Supporter.objects.filter(
            pk=supporter_id, status=Supporter.Status.SUBSCRIBED
        ).update(status=Supporter.Status.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now)
        if updated:
            supporter_unsubscribed.send(sender=Supporter, supporter_id=supporter_id)
        if updated and mailing_id is not None:
            unsubscribed_by_mailing.send(
                sender=Supporter, supporter_id=supporter_id, mailing_id=mailing_id, at=now
            )
    return bool(updated)


# The pauses the preference page offers, in days.
PAUSE_DAYS = (30, 90)


def supporter_pause(*, supporter_id: int, days: int) -> datetime:
    """Pause a subscribed supporter's mail for `days` from now; return when the pause ends.

    They stay subscribed: audiences leave them out until supporter_pauses_end clears the
    pause (mailings.selectors), and the send queue skips them if a send that froze them in is
    still running. A second pause replaces the first: the latest choice counts. Anyone not
    subscribed is left as they are, and the same date is returned, so the page that calls
    this says the same to everybody.
    """
    if days not in PAUSE_DAYS:
        raise ValueError(f"A pause is {' or '.join(map(str, PAUSE_DAYS))} days, not {days}.")
    now = timezone.now()
    until = now + timedelta(days=days)
    Supporter.objects.filter(pk=supporter_id, status=Supporter.Status.SUBSCRIBED).update(
        paused_until=until, updated_at=now
    )
    return until


def supporter_pauses_end() -> int:
    """Clear the pauses that are over, so audiences take those supporters again; return how many.

    Audiences ask for `paused_until` None, which their index can answer alone, rather than
    for a date in the past. Run by the mailings sweep (every RALLY_SWEEP_SECONDS) and before
    every audience snapshot, so a send never leaves out someone whose pause has ended. One
    UPDATE through the small `supporter_paused` index; safe to run twice or at once.
    """
    now = timezone.now()
    return Supporter.objects.filter(paused_until__lte=now).update(paused_until=None, updated_at=now)


def supporter_set_language(*, supporter_id: int, language: str) -> bool:
    """Set the language a subscribed supporter is mailed in; return whether anything changed.

    Anyone not subscribed (unsubscribed, bounced, erased…) is left as they are.
    """
    if language not in Language.values:
        raise ValueError(f"Unknown language {language!r}.")
    return bool(
        Supporter.objects.filter(pk=supporter_id, status=Supporter.Status.SUBSCRIBED)
        .exclude(language=language)
        .update(language=language, updated_at=timezone.now())
    )


# What each suppression may replace: a complaint outranks a bounce, a bounce an unsubscribe,
# each of them the sunset (which a fresh signature lifts, as it must not lift a bounce or a
# complaint), and nothing touches an erased supporter (their row is an anonymous count now).
SUPPRESSIBLE_FROM = {
    Supporter.Status.COMPLAINED: (
        Supporter.Status.SUBSCRIBED,
        Supporter.Status.UNSUBSCRIBED,
        Supporter.Status.BOUNCED,
        Supporter.Status.SUNSET,
    ),
    Supporter.Status.BOUNCED: (
        Supporter.Status.SUBSCRIBED,
        Supporter.Status.UNSUBSCRIBED,
        Supporter.Status.SUNSET,
    ),
    # A sunset supporter who unsubscribes has said so: their own word outranks silence.
    Supporter.Status.UNSUBSCRIBED: (Supporter.Status.SUBSCRIBED, Supporter.Status.SUNSET),
}


def supporter_suppress(*, supporter_id: int, status: str, reason: str) -> bool:
    """Take a supporter off the list on the ESP's word; return whether their status changed.

    `status` is BOUNCED (hard bounce, too many soft bounces, the ESP's suppression list),
    COMPLAINED (a spam complaint) or UNSUBSCRIBED (an unsubscribe the ESP received). One
    conditional UPDATE (see SUPPRESSIBLE_FROM), safe to call twice; the send queue skips the
    supporter from its next claim, since it claims subscribed supporters only.
    """
    if status not in SUPPRESSIBLE_FROM:
        raise ValueError(f"Cannot suppress a supporter as {status!r}")
    now = timezone.now()
    values = {
        "status": status,
        "suppressed_at": now,
        "suppression_reason": reason[:500],
        "updated_at": now,
    }
    if status == Supporter.Status.UNSUBSCRIBED:
        values["unsubscribed_at"] = now
    updated = Supporter.objects.filter(
        pk=supporter_id, status__in=SUPPRESSIBLE_FROM[status]
    ).update(**values)
    if updated:
        supporter_suppressed.send(
            sender=Supporter, supporter_id=supporter_id, status=status, reason=reason
        )
    return bool(updated)
