"""Unsubscribe by email: the mailto: address in List-Unsubscribe, heard through anymail.

Every bulk message names `unsubscribe+<token>@…` (supporters/tokens.py) beside the https link.
The ESP's inbound route posts what arrives there to anymail's inbound webhook
(`/anymail/<esp>/inbound/`, behind ANYMAIL_WEBHOOK_SECRET), which sends anymail's `inbound`
signal; the receiver here unsubscribes the supporter the token names. Anything else that
arrives (no token, a forged one, a reply to an appeal) is logged and dropped: the ESP gets its
200 either way, so it never retries a message nobody can act on.
"""

import logging
import re

from .services import supporter_unsubscribe
from .tokens import find_unsubscribe_mailto_tokens, read_unsubscribe_token

logger = logging.getLogger(__name__)

# Where the address a message was sent to may show: the SMTP envelope (when the ESP gives it),
# the visible recipients, and the headers receiving servers add.
RECIPIENT_HEADERS = ("To", "Cc", "Bcc", "Delivered-To", "X-Original-To")
# The subject the mailto: URL suggests, "unsubscribe <token>": a second chance for a message
# whose address lost its token on the way (a forwarding rule, a catch-all).
SUBJECT_TOKEN = re.compile(r"\bunsubscribe\s+(\S+)", re.IGNORECASE)


def unsubscribe_from_inbound(sender, event, esp_name, **kwargs) -> None:
    """Unsubscribe whoever an inbound message's signed token names; ignore any other message.

    Connected to anymail's `inbound` signal in SupportersConfig.ready().
    """
    message = getattr(event, "message", None)
    supporter_ids = inbound_unsubscribe_supporter_ids(message) if message is not None else set()
    if not supporter_ids:
        # No address or subject of the message names a supporter: replies, spam, forgeries.
        logger.info(
            "Inbound %s message %s carries no valid unsubscribe token; ignored.",
            esp_name,
            event.event_id,
        )
        return
    for supporter_id in sorted(supporter_ids):
        unsubscribed = supporter_unsubscribe(supporter_id=supporter_id)
        logger.info(
            "Inbound %s message %s: supporter %s %s.",
            esp_name,
            event.event_id,
            supporter_id,
            "unsubscribed" if unsubscribed else "was not subscribed",
        )


def inbound_unsubscribe_supporter_ids(message) -> set[int]:
    """Return the ids the valid unsubscribe tokens of a message name: address first, then subject.

    Reads the raw header text, not anymail's parsed addresses: a malformed header a spammer
    wrote must not stop the message from being looked at, nor raise.
    """
    texts = [message.envelope_recipient or ""]
    for header in RECIPIENT_HEADERS:
        texts.extend(str(value) for value in message.get_all(header) or [])
    supporter_ids = set()
    for text in texts:
        supporter_ids |= find_unsubscribe_mailto_tokens(text)
    if supporter_ids:
        return supporter_ids
    subject = SUBJECT_TOKEN.search(str(message.get("Subject") or ""))
    supporter_id = read_unsubscribe_token(subject.group(1)) if subject else None
    return {supporter_id} if supporter_id is not None else set()
