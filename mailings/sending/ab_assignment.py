"""Who is in an A/B test's slice, and which variant each of them gets: a keyed hash, no state.

A supporter's place comes from a hash of the mailing's own key and their id, the same in
Python (SQLite's snapshot, the tests) and in SQL (PostgreSQL's, set-based), so a snapshot run
again after a crash or a retry puts everyone where the first run did. The key is derived from
SECRET_KEY and the mailing: nobody outside can tell who will get which variant, and the slice
of one mailing says nothing of another's.

The hash is 28 bits of an MD5 (an assignment, not a secret: MD5 is there because PostgreSQL
has it built in). Its last two decimal digits place a supporter in the slice (below the share,
in percent); the rest picks the variant, round the labels, so the variants split the slice
evenly.
"""

import hashlib
from dataclasses import dataclass

from django.utils.crypto import salted_hmac

from mailings.models import Mailing

AB_KEY_SALT = "rally.mailings.ab_test"
# Hex digits of the MD5 a bucket is read from: 28 bits, a non-negative int4 in PostgreSQL.
_HEX_DIGITS = 7


def ab_labels(mailing: Mailing) -> list[str]:
    """Return the labels of a mailing's A/B test: "A" (its own content), then its variants."""
    variant_labels = sorted(set(mailing.variants.values_list("label", flat=True)))
    return ["A", *variant_labels]


def ab_key(mailing_id: int) -> str:
    """Return the prefix hashed with each supporter id: secret to the server, one per mailing."""
    return salted_hmac(AB_KEY_SALT, str(mailing_id), algorithm="sha256").hexdigest()[:32] + ":"


def ab_bucket(key: str, supporter_id: int) -> int:
    """Return a supporter's bucket, as the SQL of VariantAssignment computes it."""
    digest = hashlib.md5(f"{key}{supporter_id}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:_HEX_DIGITS], 16)


def _bucket_sql(column: str) -> str:
    return f"(('x' || substr(md5(%s || {column}::text), 1, {_HEX_DIGITS}))::bit(28)::int)"


@dataclass(frozen=True)
class VariantAssignment:
    """The variants a snapshot gives: one to everyone, or a test's to its slice.

    `share` None: everyone gets `labels[0]` ("" when the mailing tests nothing, the winner once
    it is known). Otherwise only the slice is frozen, each member with their label.
    """

    labels: tuple[str, ...]
    key: str = ""
    share: int | None = None

    def variant_of(self, supporter_id: int) -> str | None:
        """Return the supporter's variant, or None when they are outside the slice."""
        if self.share is None:
            return self.labels[0]
        bucket = ab_bucket(self.key, supporter_id)
        if bucket % 100 >= self.share:
            return None
        return self.labels[(bucket // 100) % len(self.labels)]

    def sql(self, column: str) -> tuple[str, str, dict[str, list]]:
        """Return SQL for the variant of `column` (a supporter id), for whether it is in the
        slice, and the parameters of each, as variant_of decides."""
        if self.share is None:
            return "%s", "TRUE", {"variant": [self.labels[0]], "in_slice": []}
        bucket = _bucket_sql(column)
        return (
            f"(%s::text[])[({bucket} / 100) %% %s + 1]",
            f"{bucket} %% 100 < %s",
            {
                "variant": [list(self.labels), self.key, len(self.labels)],
                "in_slice": [self.key, self.share],
            },
        )


def variant_assignment(mailing: Mailing) -> VariantAssignment:
    """Return what a snapshot of the mailing gives now: no test, the test's slice, or the rest."""
    if mailing.ab_test_share is None:
        return VariantAssignment(labels=("",))
    if mailing.ab_winner:
        return VariantAssignment(labels=(mailing.ab_winner,))
    return VariantAssignment(
        labels=tuple(ab_labels(mailing)), key=ab_key(mailing.pk), share=mailing.ab_test_share
    )
