"""Where a webhook may be sent: http(s) only, and, in production, never inside our network.

A URL that names a public host can still be made to reach the server's own network: its DNS
may answer a private address later (DNS rebinding), or differently to the worker than to the
form. So the rule is applied twice: when the URL is saved (validate_webhook_url), and when a
worker connects (transport.py asks `checked_address` for the address it then connects to,
so the address checked is the address used).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

ALLOWED_SCHEMES = ("http", "https")


class DestinationRefused(Exception):
    """The webhook's host is, or resolves to, an address webhooks may not reach."""


def address_is_public(address: str) -> bool:
    """Return whether an IP address is one a webhook may reach when private ones are refused.

    Refused: loopback, private, link-local, reserved, unspecified, multicast, shared
    (carrier-grade NAT) and every other range not globally routable; an IPv4 address written
    as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it is.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (%eth0) is no address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    refused = (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
        or not ip.is_global
    )
    return not refused


def resolve(host: str, port: int) -> list[str]:
    """Return the addresses `host` resolves to now, in the resolver's order."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise DestinationRefused(f"The host {host!r} does not resolve: {error}") from error
    return list(dict.fromkeys(str(answer[4][0]) for answer in answers))


def checked_address(host: str, port: int) -> str:
    """Return the address to connect to for `host`, checked against the private-range rule.

    With RALLY_WEBHOOK_ALLOW_PRIVATE every address is allowed, and the first is returned. Else
    every address the name resolves to must be public: a name that answers one public and one
    private address is refused, since the resolver could hand either to a later connection.
    """
    addresses = resolve(host, port)
    if not addresses:
        raise DestinationRefused(f"The host {host!r} does not resolve.")
    if not settings.RALLY_WEBHOOK_ALLOW_PRIVATE:
        private = [address for address in addresses if not address_is_public(address)]
        if private:
            raise DestinationRefused(
                f"The host {host!r} resolves to {private[0]}, a loopback, private or "
                "reserved address; webhooks may not point inside the server's network."
            )
    return addresses[0]


def validate_webhook_url(url: str) -> None:
    """Refuse a URL that is not http(s), or that points at a private address in production."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise ValidationError(
            "A webhook URL must start with http:// or https://.", code="webhook_scheme"
        )
    try:
        URLValidator(schemes=list(ALLOWED_SCHEMES))(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except (ValidationError, ValueError) as error:
        raise ValidationError(f"{url!r} is not a valid URL.", code="webhook_url") from error
    if parts.username or parts.password:
        # Credentials would be sent along and shown in the admin; the secret signs instead.
        raise ValidationError(
            "A webhook URL may not carry a user name or password; the signature "
            "authenticates Rally to the receiver.",
            code="webhook_credentials",
        )
    if settings.RALLY_WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        checked_address(parts.hostname or "", port)
    except DestinationRefused as error:
        raise ValidationError(str(error), code="webhook_private") from error
