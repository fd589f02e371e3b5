"""Check one Postmark message as Postmark does, and summarise it for the record.

Used by ``PostmarkApp`` (espfakes/postmark_app.py) for every message of every endpoint.
"""

from __future__ import annotations

import time
from email.utils import getaddresses
from functools import lru_cache
from typing import Any


class InvalidMessage(Exception):
    """Signal a Postmark ``ErrorCode`` 300 validation failure for one message."""


def parse_addresses(value: str) -> tuple[list[str], str | None]:
    """Split an address header into lower-cased addr-specs; also return the first invalid one."""
    if '"' in value or "<" in value or "(" in value:
        # Display names: a batch repeats the same sender (and often recipients), and the full
        # parser costs more than everything else done for a message.
        specs, bad = _parse_named_addresses(value)
        return list(specs), bad
    return _parse_specs(value.split(","))


@lru_cache(maxsize=4096)
def _parse_named_addresses(value: str) -> tuple[tuple[str, ...], str | None]:
    result, bad = _parse_specs([addr for _, addr in getaddresses([value])])
    return tuple(result), bad


def _parse_specs(specs: list[str]) -> tuple[list[str], str | None]:
    result: list[str] = []
    for spec in specs:
        spec = spec.strip()
        local, at, domain = spec.rpartition("@")
        if not at or not local or not domain or " " in spec or not spec.isprintable():
            return result, spec
        result.append(spec.lower())
    return result, None


def validate_message(message: Any, templated: bool | None) -> dict[str, list[str]]:
    """Check ``message`` as Postmark would; return its parsed To, Cc and Bcc addresses.

    ``templated`` is true for the template endpoints, false for the others, and ``None`` for
    bulk sends, which take both kinds. Raises ``InvalidMessage`` with Postmark's wording.
    """
    if not isinstance(message, dict):
        raise InvalidMessage("Invalid message: expected a JSON object.")
    sender = message.get("From")
    if not isinstance(sender, str) or not parse_addresses(sender)[0]:
        raise InvalidMessage(f"Invalid 'From' address: '{sender or ''}'.")
    addresses: dict[str, list[str]] = {}
    for field in ("To", "Cc", "Bcc"):
        value = message.get(field) or ""
        if not isinstance(value, str):
            raise InvalidMessage(f"Invalid '{field}' address: '{value}'.")
        parsed, bad = parse_addresses(value) if value else ([], None)
        if bad is not None:
            raise InvalidMessage(f"Invalid '{field}' address: '{bad}'.")
        addresses[field] = parsed
    if not (addresses["To"] or addresses["Cc"] or addresses["Bcc"]):
        raise InvalidMessage("Zero recipients specified")
    has_template = "TemplateId" in message or "TemplateAlias" in message
    if templated and not has_template:
        raise InvalidMessage("Either 'TemplateId' or 'TemplateAlias' is required.")
    if not has_template and not (message.get("TextBody") or message.get("HtmlBody")):
        raise InvalidMessage("Provide either email TextBody or HtmlBody or both.")
    headers = message.get("Headers") or []
    if not isinstance(headers, list) or not all(
        isinstance(h, dict) and isinstance(h.get("Name"), str) for h in headers
    ):
        raise InvalidMessage("Invalid 'Headers' value: expected a list of {Name, Value} objects.")
    metadata = message.get("Metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidMessage("Invalid metadata content: expected a JSON object.")
    return addresses


def message_entry(
    message: dict[str, Any],
    message_id: str,
    recipients: list[str],
    addresses: dict[str, list[str]],
    *,
    details: bool,
    bodies: bool,
) -> dict[str, Any]:
    """Return what the recorder keeps of an accepted message.

    Always ids, recipients and metadata; with ``details`` also the envelope, subject and
    headers; with ``bodies`` also the bodies, template and attachment names.
    """
    entry: dict[str, Any] = {
        "message_id": message_id,
        "recipient": recipients[0],
        "recipients": recipients,
        "metadata": message.get("Metadata") or {},
        "accepted_at": time.time(),
    }
    if not details:
        return entry
    headers: dict[str, list[str]] = {}
    for header in message.get("Headers") or []:
        headers.setdefault(header["Name"], []).append(header.get("Value"))
    entry.update(
        {
            "from": message.get("From"),
            "to": addresses["To"],
            "cc": addresses["Cc"],
            "bcc": addresses["Bcc"],
            "subject": message.get("Subject"),
            "headers": headers,
            "tag": message.get("Tag"),
            "message_stream": message.get("MessageStream"),
        }
    )
    if bodies:
        entry.update(
            {
                "text": message.get("TextBody"),
                "html": message.get("HtmlBody"),
                "reply_to": message.get("ReplyTo"),
                "template": message.get("TemplateId", message.get("TemplateAlias")),
                "template_model": message.get("TemplateModel"),
                "attachments": [
                    {
                        "name": attachment.get("Name"),
                        "content_type": attachment.get("ContentType"),
                        "content_id": attachment.get("ContentID"),
                    }
                    for attachment in message.get("Attachments") or []
                    if isinstance(attachment, dict)
                ],
            }
        )
    return entry
