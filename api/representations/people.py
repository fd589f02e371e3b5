"""People, tags and taggings as the OSDI API shows them, in Action Network's field names.

Called by the API's views and by the outbound webhooks, which pass
`base_url=site_base_url()`. A representation reads only the row it is given (and, for a
tagging, the ids it names): a page of them costs no query per item.
"""

from api.hal import NAMESPACE, curies, iso_datetime, link
from supporters.models import Supporter, Tag

# Rally's statuses in Action Network's words for an email address's status.
EMAIL_STATUS = {
    Supporter.Status.SUBSCRIBED: "subscribed",
    Supporter.Status.UNSUBSCRIBED: "unsubscribed",
    Supporter.Status.BOUNCED: "bouncing",
    Supporter.Status.COMPLAINED: "spam complaint",
    Supporter.Status.SUNSET: "unsubscribed",
    Supporter.Status.ERASED: "unsubscribed",
}


def person_href(supporter_uuid, *, base_url: str) -> str:
    return f"{base_url}/people/{supporter_uuid}"


def tag_href(tag_id: int, *, base_url: str) -> str:
    return f"{base_url}/tags/{tag_id}"


def tagging_href(tag_id: int, tagging_id: int, *, base_url: str) -> str:
    return f"{tag_href(tag_id, base_url=base_url)}/taggings/{tagging_id}"


def person_representation(supporter: Supporter, *, base_url: str) -> dict:
    """Return a supporter as an OSDI person; `base_url` like `https://host/api/osdi/v1`."""
    href = person_href(supporter.uuid, base_url=base_url)
    postal_address = {"primary": True}
    if supporter.postcode:
        postal_address["postal_code"] = supporter.postcode
    if supporter.country:
        postal_address["country"] = str(supporter.country)
    return {
        "identifiers": [f"{NAMESPACE}:{supporter.uuid}"],
        "created_date": iso_datetime(supporter.created_at),
        "modified_date": iso_datetime(supporter.updated_at),
        "given_name": supporter.first_name,
        "family_name": supporter.last_name,
        "languages_spoken": [supporter.language] if supporter.language else [],
        "email_addresses": [
            {
                "primary": True,
                "address": supporter.email,
                "status": EMAIL_STATUS.get(supporter.status, "unsubscribed"),
            }
        ],
        "postal_addresses": [postal_address],
        "custom_fields": {},
        "_links": {
            "self": link(href),
            "osdi:taggings": link(f"{href}/taggings"),
            "osdi:signatures": link(f"{href}/signatures"),
            "curies": curies(base_url),
        },
    }


def tag_representation(tag: Tag, *, base_url: str) -> dict:
    """Return a tag as an OSDI tag; `base_url` like `https://host/api/osdi/v1`."""
    href = tag_href(tag.pk, base_url=base_url)
    return {
        "identifiers": [f"{NAMESPACE}:{tag.pk}"],
        "created_date": iso_datetime(tag.created_at),
        # A tag is never changed after it is made (its name is its identity).
        "modified_date": iso_datetime(tag.created_at),
        "name": tag.name,
        "_links": {
            "self": link(href),
            "osdi:taggings": link(f"{href}/taggings"),
            "curies": curies(base_url),
        },
    }


def tagging_representation(*, tagging_id: int, tag_id: int, supporter_uuid, base_url: str) -> dict:
    """Return one tag on one person (a row of Supporter.tags' table) as an OSDI tagging."""
    return {
        "identifiers": [f"{NAMESPACE}:{tagging_id}"],
        "item_type": "osdi:person",
        "_links": {
            "self": link(tagging_href(tag_id, tagging_id, base_url=base_url)),
            "osdi:tag": link(tag_href(tag_id, base_url=base_url)),
            "osdi:person": link(person_href(supporter_uuid, base_url=base_url)),
            "curies": curies(base_url),
        },
    }
