"""The rules of signing, stated once; both writers obey them.

The portable writer (portable.py) calls the Python rules; the PostgreSQL writer (postgres.py)
puts each rule's SQL twin, defined right below it, into its statement. Change a rule here and
both writers change. Two tests hold the twins together: tests/campaigns/test_signing_rules.py
evaluates every SQL twin on PostgreSQL for every input and compares it with its Python rule, and
tests/campaigns/test_signing_parity.py runs the same sign requests through both writers and
compares every row they touch.
"""

from supporters.models import Supporter
from supporters.services import CONSENT_LIFTS, FILLABLE_FIELDS

__all__ = [
    "CONSENT_LIFTS",
    "FILLABLE_FIELDS",
    "awaits_confirmation",
    "awaits_confirmation_sql",
    "consent_lifts_sql",
    "consent_subscribes",
    "consent_subscribes_sql",
    "fill_blanks_sql",
    "fills_a_blank_sql",
    "normalised_email",
]


def normalised_email(email: str) -> str:
    """Return the address as Supporter stores it (trimmed, lower-cased): one per mailbox."""
    return Supporter._meta.get_field("email").get_prep_value(email)


# Which fields a returning signer may fill: FILLABLE_FIELDS, and only while they are blank.
# Anyone can type anyone's email into a form, so a known supporter's details are never
# overwritten; language and source are a new supporter's only. The SQL twins, for an upsert
# whose existing row is `known` and whose proposed row is `new`:


def fill_blanks_sql(known: str, new: str) -> str:
    """Return SET clauses that fill each blank fillable field of `known` from `new`."""
    # NULLIF turns a blank into NULL, which COALESCE replaces (the columns are never NULL):
    # shorter than a CASE, which keeps the batch statement within psycopg's cache (postgres.py).
    return ", ".join(
        f"{name} = COALESCE(NULLIF({known}.{name}, ''), {new}.{name})" for name in FILLABLE_FIELDS
    )


def fills_a_blank_sql(known: str, new: str) -> str:
    """Return SQL that is true when `new` fills a blank field of `known` (updated_at moves)."""
    return " OR ".join(f"({known}.{name} = '' AND {new}.{name} <> '')" for name in FILLABLE_FIELDS)


# Which statuses consent may lift: CONSENT_LIFTS (someone who left), never a bounced or
# complained address.


def consent_lifts_sql(status: str) -> str:
    """Return SQL that is true when `status` is one that fresh consent lifts to subscribed."""
    lifted = ", ".join(f"'{status_value}'" for status_value in CONSENT_LIFTS)
    return f"({status} IN ({lifted}))"


def awaits_confirmation(*, requires_confirmation: bool, link_proved: bool) -> bool:
    """Return whether a signature waits for its emailed link before it counts.

    It does on a petition that asks for confirmation, unless a personal link from a mailing
    proved the address. A signing that does not wait also confirms the same signer's earlier
    unconfirmed signature of the petition: the address is proved now, or no longer needs to be.
    """
    return requires_confirmation and not link_proved


def awaits_confirmation_sql(*, requires_confirmation: str, link_proved: str) -> str:
    """Return awaits_confirmation as SQL over the two columns named."""
    return f"({requires_confirmation} AND NOT {link_proved})"


def consent_subscribes(*, consent: bool, requires_confirmation: bool, link_proved: bool) -> bool:
    """Return whether ticking consent subscribes the signer now.

    Consent subscribes at once, unless the address is still to be confirmed: then it waits for
    the emailed link (signature_confirm subscribes them), so that nobody is mailed at an
    address they have not proved is theirs.
    """
    return consent and not awaits_confirmation(
        requires_confirmation=requires_confirmation, link_proved=link_proved
    )


def consent_subscribes_sql(*, consent: str, requires_confirmation: str, link_proved: str) -> str:
    """Return consent_subscribes as SQL over the three columns named."""
    awaits = awaits_confirmation_sql(
        requires_confirmation=requires_confirmation, link_proved=link_proved
    )
    return f"({consent} AND NOT {awaits})"
