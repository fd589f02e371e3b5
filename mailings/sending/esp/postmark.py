"""Postmark's batch API: up to 500 different messages in one POST to /email/batch.

anymail builds a message's JSON by parsing every address again (the same From and Reply-To,
five times a message) and walking all of a message's attributes: most of the client's cost of
a message (docs/performance.md, "Where a message's time goes"). The messages of a batch differ
only in what is personal: the recipient, subject, bodies, headers' values and metadata. So
anymail builds the first message of each shape (sender, Reply-To, header names, metadata keys),
and the others are its JSON with those fields put in, as anymail puts them
(tests/mailings/sending/test_esp_fast_paths.py compares the two for every message).
"""

import json
from urllib.parse import urljoin

from anymail.exceptions import AnymailRequestsAPIError
from anymail.message import AnymailMessage
from anymail.utils import UNSET

from mailings.sending.errors import SendError
from mailings.sending.esp.base import PLAIN_ADDRESS, BatchSender, MessageResult

# anymail's message attributes that change a message's JSON beyond its personal fields.
_BUILT_BY_ANYMAIL_ONLY = ("esp_extra", "envelope_sender", "send_at", "tags", "track_clicks",
                          "track_opens", "template_id", "merge_data", "merge_global_data",
                          "merge_headers", "merge_metadata")  # fmt: skip
_DEFAULTS_THE_SAME_FOR_EVERY_MESSAGE = {"metadata", "tags", "track_clicks", "track_opens",
                                        "extra_headers"}  # fmt: skip


class PostmarkBatchSender(BatchSender):
    max_batch = 500

    def send(self, messages: list[AnymailMessage]) -> list[MessageResult]:
        backend = self.connection
        first_payload = backend.build_message_payload(messages[0], backend.send_defaults)
        params = first_payload.get_request_params(backend.api_url)
        params["url"] = urljoin(backend.api_url, "email/batch")
        # UTF-8 rather than \u escapes: JSON's own encoding, and a shorter, faster write of
        # content in any script but Latin.
        params["data"] = json.dumps(
            message_payloads(backend, messages, first_payload.data), ensure_ascii=False
        ).encode()
        params.setdefault("timeout", backend.timeout)
        # anymail's own post (error wrapping included); its payload only names the request.
        response = backend.post_to_esp(_PreparedRequest(params), messages[0])
        answers = backend.deserialize_json_response(response, first_payload, messages[0])
        if not isinstance(answers, list) or len(answers) != len(messages):
            raise AnymailRequestsAPIError(
                "Postmark's batch answer does not have one result per message",
                response=response,
                backend=backend,
            )
        return [_result(answer) for answer in answers]


def message_payloads(backend, messages: list[AnymailMessage], first_data=None) -> list[dict]:
    """Return each message's Postmark JSON, as anymail's backend would build it.

    `first_data` is the first message's, when the caller has built it already.
    """
    # Defaults (ANYMAIL's SEND_DEFAULTS) that only add the same to every message are fine;
    # any other makes anymail build every message.
    personalise = set(backend.send_defaults) <= _DEFAULTS_THE_SAME_FOR_EVERY_MESSAGE
    built_by_shape: dict[tuple, dict] = {}
    payloads = []
    for index, message in enumerate(messages):
        shape = _shape(message) if personalise else None
        built = built_by_shape.get(shape) if shape is not None else None
        if built is not None:
            payloads.append(_personalised(built, message))
            continue
        if index == 0 and first_data is not None:
            data = first_data
        else:
            data = backend.build_message_payload(message, backend.send_defaults).data
        if shape is not None:
            built_by_shape[shape] = data
        payloads.append(data)
    return payloads


def _shape(message: AnymailMessage) -> tuple | None:
    """Return what a message shares with the others built from the same JSON, or None when
    only anymail may build it (anything but one plain recipient, a text and an HTML body)."""
    if (
        len(message.to) != 1
        or message.cc
        or message.bcc
        or message.attachments
        or message.content_subtype != "plain"
        or not message.body
        or not message.subject
        or len(message.alternatives) != 1
        or message.alternatives[0][1] != "text/html"
        or not message.alternatives[0][0]
        or not PLAIN_ADDRESS.fullmatch(message.to[0])
        or any(getattr(message, name, UNSET) is not UNSET for name in _BUILT_BY_ANYMAIL_ONLY)
        or any(name.lower() == "reply-to" for name in message.extra_headers)
    ):
        return None
    metadata = getattr(message, "metadata", UNSET)
    return (
        message.from_email,
        tuple(message.reply_to),
        tuple(message.extra_headers),
        None if metadata is UNSET else tuple(metadata),
    )


def _personalised(built: dict, message: AnymailMessage) -> dict:
    """Return another message's JSON with this one's recipient, content, headers and metadata."""
    data = built.copy()
    data["To"] = message.to[0]
    data["Subject"] = message.subject
    data["TextBody"] = message.body
    data["HtmlBody"] = message.alternatives[0][0]
    headers = message.extra_headers
    if "Headers" in built:
        data["Headers"] = [
            {"Name": item["Name"], "Value": headers[item["Name"]]}
            if item["Name"] in headers
            else item
            for item in built["Headers"]
        ]
    metadata = getattr(message, "metadata", UNSET)
    if metadata is not UNSET:
        # anymail merges the message's metadata over the defaults', as this does over the
        # built message's (the same keys).
        data["Metadata"] = {**built["Metadata"], **metadata}
    return data


class _PreparedRequest:
    """Stands in for an anymail payload whose request parameters are already built."""

    def __init__(self, params: dict):
        self.params = params

    def get_request_params(self, api_url: str) -> dict:
        return self.params


def _result(answer: dict) -> MessageResult:
    error_code = answer.get("ErrorCode", 0)
    if error_code == 0 and answer.get("MessageID"):
        return MessageResult(message_id=str(answer["MessageID"]))
    reason = f"Postmark ErrorCode {error_code}: {answer.get('Message', '')}"[:2000]
    # 406 inactive recipient, 300 invalid request and the like do not improve with retrying;
    # 429 and 5xx-like codes inside a batch answer are Postmark asking us to slow down.
    transient = error_code in (429, 500, 503)
    return MessageResult(failure=SendError(reason, permanent=not transient))
