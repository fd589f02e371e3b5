"""Signers that derive their key once make the tokens Django's signers make."""

import pytest
from django.core import signing
from hypothesis import given
from hypothesis import strategies as st

from config.lib.signing import signer, timestamp_signer


@given(value=st.text(max_size=40).filter(lambda text: ":" not in text))
def test_a_signature_is_the_one_djangos_signer_makes(value):
    ours = signer("rally.test")
    assert ours.sign(value) == signing.Signer(salt="rally.test").sign(value)
    assert ours.unsign(ours.sign(value)) == value


@given(value=st.text(alphabet="abcXYZ019.-", max_size=30))
def test_a_timestamped_token_is_the_one_djangos_timestamp_signer_makes(value):
    ours = timestamp_signer("rally.test")
    stamped = f"{value}:{ours.timestamp()}"
    django = signing.TimestampSigner(salt="rally.test")
    assert ours.signature(stamped) == django.signature(stamped)
    assert django.unsign(ours.sign(value), max_age=60) == value


def test_salts_sign_apart():
    assert signer("rally.one").sign("7") != signer("rally.two").sign("7")


def test_a_changed_secret_key_signs_anew_and_the_old_key_still_reads(settings):
    old_token = signer("rally.test").sign("7")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert signer("rally.test").sign("7") != old_token
    assert signer("rally.test").unsign(old_token) == "7"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(signing.BadSignature):
        signer("rally.test").unsign(old_token)
