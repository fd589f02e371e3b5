"""What an ESP event means for Rally: one Effect per stored event, decided per ESP.

anymail normalises every ESP to an `event_type` and a `reject_reason`, but that is not always
enough to tell a hard bounce from a soft one, or a recipient's dead mailbox from a sender's
blocked content: Postmark's SoftBounce and Brevo's soft_bounce arrive as "bounced"/"bounced",
exactly like their hard bounces. The raw event (TrackingEvent.payload) says which, so each ESP
that needs it has a small rule here reading the field that ESP documents.

Suppressing someone on a sender-side refusal (DMARC, blocked content) would take the whole
list off in one misconfigured afternoon, so a "rejected" event suppresses only when its reason
is about the recipient.
"""

from dataclasses import dataclass

from anymail.signals import EventType, RejectReason

from mailings.models import Delivery
from supporters.models import Supporter


@dataclass(frozen=True)
class Effect:
    """What applying one event does: to its Delivery, and to the supporter."""

    # The Delivery.esp_status it stands for, if any (kept by precedence, never downgraded).
    esp_status: str = ""
    # The Supporter.Status it moves the supporter to at once, if any.
    suppress_as: str = ""
    # Whether it counts towards RALLY_SOFT_BOUNCE_LIMIT.
    soft_bounce: bool = False
    opened: bool = False
    clicked: bool = False


NOTHING = Effect()
DELIVERED = Effect(esp_status=Delivery.EspStatus.DELIVERED)
SOFT_BOUNCE = Effect(esp_status=Delivery.EspStatus.SOFT_BOUNCED, soft_bounce=True)
HARD_BOUNCE = Effect(esp_status=Delivery.EspStatus.BOUNCED, suppress_as=Supporter.Status.BOUNCED)
COMPLAINT = Effect(
    esp_status=Delivery.EspStatus.COMPLAINED, suppress_as=Supporter.Status.COMPLAINED
)
ESP_UNSUBSCRIBE = Effect(suppress_as=Supporter.Status.UNSUBSCRIBED)
OPENED = Effect(opened=True)
CLICKED = Effect(clicked=True)
# Refused by the ESP for reasons that are not the recipient's: recorded, nobody suppressed.
REJECTED_ONLY = Effect(esp_status=Delivery.EspStatus.REJECTED)

# A refusal because of the recipient's own history at the ESP: its suppression list.
_REJECTED_FOR_RECIPIENT = {
    RejectReason.BOUNCED: Effect(
        esp_status=Delivery.EspStatus.REJECTED, suppress_as=Supporter.Status.BOUNCED
    ),
    RejectReason.INVALID: Effect(
        esp_status=Delivery.EspStatus.REJECTED, suppress_as=Supporter.Status.BOUNCED
    ),
    RejectReason.SPAM: Effect(
        esp_status=Delivery.EspStatus.REJECTED, suppress_as=Supporter.Status.COMPLAINED
    ),
    RejectReason.UNSUBSCRIBED: Effect(
        esp_status=Delivery.EspStatus.REJECTED, suppress_as=Supporter.Status.UNSUBSCRIBED
    ),
}
_REJECTED_RECIPIENT_BLOCKED = _REJECTED_FOR_RECIPIENT[RejectReason.BOUNCED]

# Hard bounces whose anymail reason is not "bounced": a rule per ESP below may still say soft.
_HARD_REASONS = {RejectReason.BOUNCED, RejectReason.INVALID, None, ""}


def event_effect(*, esp: str, event_type: str, reject_reason: str, payload) -> Effect:
    """Return what a stored event means, from anymail's normalised fields and the raw event.

    `esp` is TrackingEvent.esp (e.g. "postmark", "amazon_ses"); `payload` the raw event as
    stored, a dict for every ESP Rally reads anything from.
    """
    if event_type == EventType.DEFERRED:
        # The ESP still retries (greylisting, a full mailbox for now): nothing has bounced.
        # Mailjet's greylisting comes as a "bounce" that anymail reports as deferred, which
        # the rule that reads Mailjet's raw event must not turn back into a soft bounce.
        return NOTHING
    raw = payload if isinstance(payload, dict) else {}
    special = _ESP_RULES.get(esp)
    if special is not None:
        effect = special(event_type, reject_reason or "", raw)
        if effect is not None:
            return effect
    if event_type == EventType.DELIVERED:
        return DELIVERED
    if event_type == EventType.COMPLAINED:
        return COMPLAINT
    if event_type == EventType.BOUNCED:
        return HARD_BOUNCE if (reject_reason or "") in _HARD_REASONS else SOFT_BOUNCE
    if event_type == EventType.REJECTED:
        return _REJECTED_FOR_RECIPIENT.get(reject_reason, REJECTED_ONLY)
    if event_type == EventType.UNSUBSCRIBED:
        return ESP_UNSUBSCRIBE
    if event_type == EventType.OPENED:
        return OPENED
    if event_type == EventType.CLICKED:
        return CLICKED
    # queued, sent, autoresponded, failed, unknown, …
    return NOTHING


def _postmark(event_type: str, reject_reason: str, raw: dict) -> Effect | None:
    # Bounce webhook "Type": SoftBounce comes as bounced/bounced, like HardBounce.
    # ManuallyDeactivated (rejected/blocked) is the recipient's address deactivated at Postmark;
    # Blocked, DMARCPolicy and Unconfirmed are about the sender or the content.
    kind = raw.get("Type")
    if kind == "SoftBounce":
        return SOFT_BOUNCE
    if kind == "VirusNotification":
        return NOTHING
    if kind == "ManuallyDeactivated":
        return _REJECTED_RECIPIENT_BLOCKED
    return None


def _brevo(event_type: str, reject_reason: str, raw: dict) -> Effect | None:
    # "soft_bounce" and "hard_bounce" both come as bounced/bounced. Brevo's "blocked" means the
    # address is on the account's blocklist (an earlier bounce, complaint or unsubscribe).
    kind = raw.get("event")
    if kind == "soft_bounce":
        return SOFT_BOUNCE
    if kind == "blocked":
        return _REJECTED_RECIPIENT_BLOCKED
    return None


def _mailjet(event_type: str, reject_reason: str, raw: dict) -> Effect | None:
    # Every Mailjet bounce carries "hard_bounce": true or false. A "blocked" event names its
    # cause in "error": some are the recipient's standing at Mailjet, the rest the sender's.
    if raw.get("event") == "bounce":
        return HARD_BOUNCE if raw.get("hard_bounce") else SOFT_BOUNCE
    if raw.get("event") == "blocked":
        error = raw.get("error")
        if error in ("preblocked", "blacklisted", "user unknown", "invalid domain", "typofix"):
            return _REJECTED_RECIPIENT_BLOCKED
        if error == "spam reporter":
            return _REJECTED_FOR_RECIPIENT[RejectReason.SPAM]
        return REJECTED_ONLY
    return None


def _sendgrid(event_type: str, reject_reason: str, raw: dict) -> Effect | None:
    # A SendGrid "bounce" carries "type": "bounce" (permanent) or "blocked" (the receiving
    # server refused it for now, often for reputation); anymail gives no reject_reason for it.
    # A drop for "Spam Reporting Address" is the recipient's earlier complaint.
    if raw.get("event") == "bounce":
        return SOFT_BOUNCE if raw.get("type") == "blocked" else HARD_BOUNCE
    if raw.get("event") == "dropped":
        reason = str(raw.get("reason", "")).lower()
        if reason == "spam reporting address":
            return _REJECTED_FOR_RECIPIENT[RejectReason.SPAM]
    return None


def _amazon_ses(event_type: str, reject_reason: str, raw: dict) -> Effect | None:
    # Every SES bounce comes as bounced/bounced; "bounceType" says Permanent (including the
    # SES suppression list's "Suppressed"), Transient or Undetermined.
    if event_type == EventType.BOUNCED:
        bounce = raw.get("bounce")
        bounce_type = bounce.get("bounceType") if isinstance(bounce, dict) else None
        return HARD_BOUNCE if bounce_type == "Permanent" else SOFT_BOUNCE
    if event_type == EventType.REJECTED:
        # SES "Reject": a virus in the message. Nothing to do with the recipient.
        return REJECTED_ONLY
    return None


def _mailgun(event_type: str, reject_reason: str, raw: dict) -> Effect | None:
    # A permanent "failed" carries "reason": bounce and suppress-bounce are the address;
    # suppress-complaint and suppress-unsubscribe are Mailgun's lists; generic, old and espblock
    # mean Mailgun gave up after temporary failures (a soft bounce). Temporary failures come as
    # "deferred" and are retried by Mailgun.
    data = raw.get("event-data")
    if not isinstance(data, dict) or data.get("event") != "failed":
        return None
    reason = data.get("reason")
    if reason == "suppress-complaint":
        return _REJECTED_FOR_RECIPIENT[RejectReason.SPAM]
    if reason == "suppress-unsubscribe":
        return _REJECTED_FOR_RECIPIENT[RejectReason.UNSUBSCRIBED]
    if event_type == EventType.BOUNCED and reason in ("generic", "old", "espblock"):
        return SOFT_BOUNCE
    return None


_ESP_RULES = {
    "amazon_ses": _amazon_ses,
    "brevo": _brevo,
    "mailgun": _mailgun,
    "mailjet": _mailjet,
    "postmark": _postmark,
    "sendgrid": _sendgrid,
}
