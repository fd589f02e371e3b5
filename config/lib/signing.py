"""Django's signers with their key derived once: the same tokens, at a fraction of the cost.

Django's Signer derives its HMAC key from the salt and SECRET_KEY on every signature
(`salted_hmac`), then computes the HMAC: two hashes where one would do. A bulk message signs a
token for each link in it, so the send queue signs several a message. These signers keep an HMAC
already keyed and copy it per signature; the bytes are the ones Django's signer makes
(tests/config/test_signing.py compares them). Checking a signature (`unsign`, which tries the
fallback keys too) is Django's own code, untouched.

`signer(salt)` returns one per salt and SECRET_KEY, so a changed SECRET_KEY (a rotation, a test
that sets it) is honoured at the next call.
"""

from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac


class _KeyedOnce:
    """Overrides Signer.signature for the signer's own key; another key goes Django's way."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # HMAC is incremental: the MAC of b"" copied and updated with a value is its MAC.
        self._keyed = salted_hmac(self.salt + "signer", b"", self.key, algorithm=self.algorithm)

    def signature(self, value, key=None):
        if key is not None and key != self.key:
            return super().signature(value, key)
        mac = self._keyed.copy()
        mac.update(value.encode())
        return signing.b64_encode(mac.digest()).decode()


class KeyedSigner(_KeyedOnce, signing.Signer):
    """A signing.Signer whose key is derived once."""


class KeyedTimestampSigner(_KeyedOnce, signing.TimestampSigner):
    """A signing.TimestampSigner whose key is derived once."""


def signer(salt: str) -> KeyedSigner:
    """Return the signer of a salt under the current SECRET_KEY (and its fallbacks)."""
    return _signer(KeyedSigner, salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def timestamp_signer(salt: str) -> KeyedTimestampSigner:
    """Return the timestamp signer of a salt under the current SECRET_KEY (and its fallbacks)."""
    return _signer(
        KeyedTimestampSigner, salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS)
    )


@lru_cache(maxsize=64)
def _signer(cls, salt: str, key: str, fallback_keys: tuple[str, ...]):
    return cls(salt=salt, key=key, fallback_keys=list(fallback_keys))
