"""Writes to people through the API: the person signup helper, PUT, and tags by name.

Each runs in one transaction: a request either does all it asked or nothing.
"""

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from api.hal import ApiError
from api.people_input import SUBSCRIBED, UNSUBSCRIBED, PersonInput
from supporters.models import Supporter, Tag
from supporters.services import (
    consent_record_create,
    supporter_subscribe,
    supporter_unsubscribe,
    supporter_upsert,
)
from supporters.signals import supporter_subscribed
from supporters.suppression import email_is_suppressed

# Statuses an explicit `"status": "subscribed"` lifts back to subscribed. Erased is not among
# them: an erased person is gone, and their address may not come back through the API.
RESUBSCRIBABLE = (
    Supporter.Status.UNSUBSCRIBED,
    Supporter.Status.BOUNCED,
    Supporter.Status.COMPLAINED,
    Supporter.Status.SUNSET,
)


def api_consent_wording(token_name: str) -> str:
    """Return the consent record's wording for someone subscribed through the API."""
    return f"Subscribed through the OSDI API by the integration using the token “{token_name}”."


def _refuse_erased(email: str) -> None:
    if email_is_suppressed(email):
        raise ApiError(
            410, "this address belongs to a person erased at their request: it cannot be added"
        )


def person_signup(
    *, person: PersonInput, add_tags: list[str], token_name: str
) -> tuple[Supporter, bool]:
    """Add or match a person by email, as Action Network's person signup helper does.

    A new person is subscribed (unless the request says "unsubscribed") with a consent record
    naming the token. A known person's blank fields are filled, never overwritten; their status
    changes only when the request asks: "unsubscribed" unsubscribes them, "subscribed" brings
    back someone who unsubscribed, bounced, complained or was sunset. Returns the supporter
    as stored, and whether they were created.
    """
    email = person.email
    _refuse_erased(email)
    # No savepoint: inside the API's request transaction (api/hal.py) a failure rolls back the
    # whole request anyway, and a savepoint costs two statements of each signup.
    with transaction.atomic(savepoint=False):
        supporter, created = supporter_upsert(
            email=email,
            first_name=person.given_name or "",
            last_name=person.family_name or "",
            country=person.country or "",
            postcode=person.postal_code or "",
            language=person.language or "",
            source=f"api:{token_name}"[:100],
            subscribed=person.email_status != UNSUBSCRIBED,
        )
        if supporter.status == Supporter.Status.ERASED:
            # Only an erased row's own placeholder address matches it; what the upsert filled
            # in is rolled back with the request.
            raise ApiError(410, "this person was erased at their request")
        if created:
            if person.email_status != UNSUBSCRIBED:
                consent_record_create(
                    supporter=supporter, wording=api_consent_wording(token_name), resubscribe=False
                )
        else:
            _apply_requested_status(supporter, person.email_status, token_name)
        if add_tags:
            tags_add_by_name(supporter_id=supporter.pk, names=add_tags)
        if not created:
            supporter.refresh_from_db()
    return supporter, created


def _apply_requested_status(supporter: Supporter, status: str | None, token_name: str) -> None:
    if status == UNSUBSCRIBED:
        supporter_unsubscribe(supporter_id=supporter.pk)
    elif status == SUBSCRIBED and supporter.status in RESUBSCRIBABLE:
        consent_record_create(
            supporter=supporter, wording=api_consent_wording(token_name), resubscribe=False
        )
        if supporter.status == Supporter.Status.UNSUBSCRIBED:
            supporter_subscribe(supporter_id=supporter.pk)
        else:
            # Bounced, complained or sunset: fresh consent given through an integration that
            # asked for it explicitly; the suppression's reason goes with the status.
            lifted = Supporter.objects.filter(pk=supporter.pk, status__in=RESUBSCRIBABLE).update(
                status=Supporter.Status.SUBSCRIBED,
                unsubscribed_at=None,
                suppressed_at=None,
                suppression_reason="",
                updated_at=timezone.now(),
            )
            if lifted:
                # As supporter_subscribe announces it (outbound webhooks' supporter.subscribed).
                supporter_subscribed.send(sender=Supporter, supporter_id=supporter.pk)


def person_update(*, supporter: Supporter, person: PersonInput, token_name: str) -> Supporter:
    """Change a person's fields as a PUT gives them (overwriting), and their status if asked.

    A new email address is refused when another person has it or it was erased.
    """
    if supporter.status == Supporter.Status.ERASED:
        raise ApiError(410, "this person was erased")
    changes = {
        "first_name": person.given_name,
        "last_name": person.family_name,
        "country": person.country,
        "postcode": person.postal_code,
        "language": person.language,
    }
    changed = [name for name, value in changes.items() if value is not None]
    for name in changed:
        setattr(supporter, name, changes[name])
    if person.email is not None and person.email != supporter.email:
        _refuse_erased(person.email)
        if Supporter.objects.filter(email=person.email).exists():
            raise ApiError(409, "another person has this email address")
        supporter.email = person.email
        changed.append("email")
    try:
        with transaction.atomic():
            if changed:
                supporter.updated_at = timezone.now()
                supporter.save(update_fields=[*changed, "updated_at"])
            _apply_requested_status(supporter, person.email_status, token_name)
    except IntegrityError:
        # Another request took the address between the check and the save.
        raise ApiError(409, "another person has this email address") from None
    supporter.refresh_from_db()
    return supporter


def tags_add_by_name(*, supporter_id: int, names: list[str]) -> None:
    """Tag a supporter with each named tag, making the tags that do not exist yet.

    Two statements, on PostgreSQL and SQLite: the tags, then the taggings selected by name. The
    second is a statement of its own so that it sees a tag another request made meanwhile.
    """
    Tag.objects.bulk_create([Tag(name=name) for name in names], ignore_conflicts=True)
    through = Supporter.tags.through
    quote = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * len(names))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(through._meta.db_table)} ({quote('supporter_id')}, "  # noqa: S608
            f"{quote('tag_id')}) SELECT %s, {quote('id')} FROM {quote(Tag._meta.db_table)} "
            f"WHERE {quote('name')} IN ({placeholders}) ON CONFLICT DO NOTHING",
            [supporter_id, *names],
        )
