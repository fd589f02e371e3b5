"""Summarise one message the SMTP sink accepted, for the record.

Used by ``SMTPApp.accept`` (espfakes/smtp_app.py) for every message.
"""

from __future__ import annotations

import re
import time
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from typing import Any

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_FULL_PARSER = BytesParser(policy=policy.default)
_HEADER_PARSER = BytesHeaderParser(policy=policy.default)


def message_entry(
    content: bytes,
    queue_id: str,
    recipients: list[str],
    mail_from: str | None,
    *,
    details: bool,
    bodies: bool,
) -> dict[str, Any]:
    """Return what the recorder keeps of an accepted message.

    Always the queue id, Message-ID, envelope and size; with ``details`` also the subject and
    headers; with ``bodies`` also the text and HTML bodies and a summary of other parts.
    """
    entry: dict[str, Any] = {
        "queue_id": queue_id,
        "message_id": None,
        "recipient": recipients[0],
        "recipients": recipients,
        "from": mail_from,
        "size": len(content),
        "accepted_at": time.time(),
    }
    if details:
        _add_details(entry, content, full=bodies)
    else:
        match = _MESSAGE_ID.search(content, 0, _header_end(content))
        if match:
            entry["message_id"] = b" ".join(match.group(1).split()).decode("ascii", "replace")
    return entry


def _add_details(entry: dict[str, Any], content: bytes, *, full: bool) -> None:
    # SMTP carries CRLF line ends; recorded text should read like it was written.
    content = content.replace(b"\r\n", b"\n")
    try:
        message = (_FULL_PARSER if full else _HEADER_PARSER).parsebytes(content)
    except Exception as exc:  # a sink must accept whatever arrives, and say why it's odd
        entry["parse_error"] = repr(exc)
        return
    entry["message_id"] = str(message["Message-ID"]) if "Message-ID" in message else None
    entry["subject"] = str(message["Subject"]) if "Subject" in message else None
    entry["headers"] = _header_dict(message)
    if full:
        assert isinstance(message, EmailMessage)
        entry["text"], entry["html"], entry["attachments"] = _parts(message)


def _header_dict(message: Message) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name, []).append(str(value))
    return headers


def _parts(message: EmailMessage) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """Return the first text/plain and text/html bodies, and a summary of other parts."""
    text = html = None
    attachments: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        if not filename and content_type == "text/plain" and text is None:
            text = part.get_content()
        elif not filename and content_type == "text/html" and html is None:
            html = part.get_content()
        else:
            payload = part.get_payload(decode=True) or b""
            attachments.append(
                {"name": filename, "content_type": content_type, "size": len(payload)}
            )
    return text, html, attachments


def _header_end(content: bytes) -> int:
    end = content.find(b"\r\n\r\n")
    return len(content) if end < 0 else end
