"""Postmark's batch API: up to 500 different messages in one POST to /email/batch."""

import json
from urllib.parse import urljoin

from anymail.exceptions import AnymailRequestsAPIError
from anymail.message import AnymailMessage

from mailings.sending.errors import SendError
from mailings.sending.esp.base import BatchSender, MessageResult


class PostmarkBatchSender(BatchSender):
    max_batch = 500

    def send(self, messages: list[AnymailMessage]) -> list[MessageResult]:
        backend = self.connection
        payloads = [
            backend.build_message_payload(message, backend.send_defaults) for message in messages
        ]
        params = payloads[0].get_request_params(backend.api_url)
        params["url"] = urljoin(backend.api_url, "email/batch")
        params["data"] = json.dumps([payload.data for payload in payloads])
        params.setdefault("timeout", backend.timeout)
        # anymail's own post (error wrapping included); its payload only names the request.
        response = backend.post_to_esp(_PreparedRequest(params), messages[0])
        answers = backend.deserialize_json_response(response, payloads[0], messages[0])
        if not isinstance(answers, list) or len(answers) != len(messages):
            raise AnymailRequestsAPIError(
                "Postmark's batch answer does not have one result per message",
                response=response,
                backend=backend,
            )
        return [_result(answer) for answer in answers]


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
