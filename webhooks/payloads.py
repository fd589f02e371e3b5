"""The bodies webhooks carry: {"id", "type", "created", "data"}, `data` the OSDI representation.

The representations are the API's own (api/representations/), so a receiver reads the same
JSON from a webhook as from the API, and can follow its `_links` into the API.
"""

import json
import uuid
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from api.hal import site_base_url
from api.representations.actions import message_representation, signature_representation
from api.representations.people import person_representation


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Return `data` as JSON would bring it back: dates as text, lazy strings as strings."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def event_body(
    *, event_id: uuid.UUID, event_type: str, created: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "type": event_type,
        "created": created.isoformat(),
        "data": _json_safe(data),
    }


def person_data(supporter) -> dict[str, Any]:
    return person_representation(supporter, base_url=site_base_url())


def signature_data(signature) -> dict[str, Any]:
    return signature_representation(signature, base_url=site_base_url())


def message_data(mailing) -> dict[str, Any]:
    return message_representation(mailing, base_url=site_base_url())


def identifiers_only(data: dict[str, Any]) -> dict[str, Any]:
    """Return what of a representation may outlive an erasure: its identifiers, nothing else.

    A person's identifiers are `rally:<uuid>`, which name nobody once the row is anonymous; a
    signature's name the signature. Names, addresses, custom fields and links all go.
    """
    return {"identifiers": list(data.get("identifiers", []))}


def body_bytes(payload: dict[str, Any]) -> bytes:
    """Return the bytes sent for a stored body, the same bytes that are signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
