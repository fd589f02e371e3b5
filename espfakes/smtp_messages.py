"""Summarise one message the SMTP sink accepted, for the record.

Used by ``SMTPApp`` (espfakes/smtp_app.py) for every message: ``message_entry`` for a message
in hand, ``summary_json`` for one still in a connection's receive buffer
(espfakes/_smtp_bulk.py).
"""

from __future__ import annotations

import re
import time
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from json.encoder import encode_basestring_ascii as _string  # what json.dumps uses
from typing import Any

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
# The same header, found where it follows a line end and where it opens the message: without
# IGNORECASE and "^" the regex engine can skip ahead to each line feed.
_MESSAGE_ID_AFTER_LINE_END = re.compile(
    rb"\n[Mm][Ee][Ss][Ss][Aa][Gg][Ee]-[Ii][Dd]:[ \t]*(.*(?:\r?\n[ \t].*)*)"
)
_MESSAGE_ID_FIRST = re.compile(
    rb"[Mm][Ee][Ss][Ss][Aa][Gg][Ee]-[Ii][Dd]:[ \t]*(.*(?:\r?\n[ \t].*)*)"
)
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
        entry.update(message_details(content, full=bodies))
    else:
        match = _MESSAGE_ID.search(content, 0, _header_end(content))
        if match:
            entry["message_id"] = b" ".join(match.group(1).split()).decode("ascii", "replace")
    return entry


def message_details(content: bytes, *, full: bool) -> dict[str, Any]:
    """Return the Message-ID, subject and headers; with ``full`` also the bodies and parts.

    Without ``full`` the headers are all that is read: ``content`` may end after them.
    """
    # SMTP carries CRLF line ends; recorded text should read like it was written.
    content = content.replace(b"\r\n", b"\n")
    try:
        message = (_FULL_PARSER if full else _HEADER_PARSER).parsebytes(content)
    except Exception as exc:  # a sink must accept whatever arrives, and say why it's odd
        return {"message_id": None, "parse_error": repr(exc)}
    details: dict[str, Any] = {
        "message_id": str(message["Message-ID"]) if "Message-ID" in message else None,
        "subject": str(message["Subject"]) if "Subject" in message else None,
        "headers": _header_dict(message),
    }
    if full:
        assert isinstance(message, EmailMessage)
        details["text"], details["html"], details["attachments"] = _parts(message)
    return details


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


def header_end_in(data: bytes | bytearray, start: int, end: int) -> int:
    """Return where the headers of the message ``data[start:end]`` end (``end`` if no body)."""
    header_end = data.find(b"\r\n\r\n", start, end)
    return end if header_end < 0 else header_end


def _header_end(content: bytes) -> int:
    end = content.find(b"\r\n\r\n")
    return len(content) if end < 0 else end


def summary_json(
    data: bytes | bytearray,
    start: int,
    end: int,
    stuffed_dots: int,
    queue_id: str,
    recipients: list[str],
    mail_from: str | None,
) -> bytes:
    """Return, as the recorder's JSON, what ``message_entry`` keeps without details.

    The message is ``data[start:end]`` as it arrived, still dot-stuffed, with ``stuffed_dots``
    lines that carry an extra leading dot: nothing is copied or parsed. Keys, order and
    encoding are ``message_entry``'s; tests/espfakes/test_smtp_bulk.py compares the two.
    """
    header_end = header_end_in(data, start, end)
    match = _MESSAGE_ID_FIRST.match(data, start, header_end) or _MESSAGE_ID_AFTER_LINE_END.search(
        data, start, header_end
    )
    if match:
        message_id = _string(b" ".join(match.group(1).split()).decode("ascii", "replace"))
    else:
        message_id = "null"
    first = _string(recipients[0])
    listed = first if len(recipients) == 1 else ",".join(map(_string, recipients))
    sender = "null" if mail_from is None else _string(mail_from)
    return (
        f'{{"queue_id":{_string(queue_id)},"message_id":{message_id},"recipient":{first},'
        f'"recipients":[{listed}],"from":{sender},"size":{end - start - stuffed_dots},'
        f'"accepted_at":{time.time()!r}}}'
    ).encode("ascii")
