"""FieldsCopiedPlainly copies what Django's own __deepcopy__ copies, and no more or less.

It re-implements Field.__deepcopy__ and Widget.__deepcopy__; these tests fail when Django
changes what those copy, or stops building each form through copy.deepcopy(base_fields).
"""

import copy

import pytest
from django import forms

from campaigns.forms import FieldsCopiedPlainly, SignatureForm

_ATOMS = (str, bytes, int, float, bool, type(None))


def _members(value) -> dict:
    """Return what a copy may share with its original or replace: items, elements, attributes."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list | tuple):
        return dict(enumerate(value))
    return dict(getattr(value, "__dict__", {}))


def copied_paths(original, duplicate, path: str = "field") -> dict[str, bool]:
    """Map each path reachable through fresh objects to whether the copy made it fresh.

    A shared object's insides are shared too, so the walk only goes into fresh ones: the
    field, then its widget, the widget's attrs, error_messages, validators, and whatever
    else a copier replaced.
    """
    fresh = duplicate is not original
    paths = {path: fresh}
    if fresh and not isinstance(original, _ATOMS):
        before, after = _members(original), _members(duplicate)
        assert set(before) == set(after), f"{path}: the copy has other members"
        for name, value in before.items():
            paths |= copied_paths(value, after[name], f"{path}.{name}")
    return paths


def _django_copies() -> dict[str, forms.Field]:
    # Each field through its own __deepcopy__, as Django copies a plain dict of base_fields.
    return copy.deepcopy(dict(SignatureForm.base_fields))


def _plain_copies() -> dict[str, forms.Field]:
    return FieldsCopiedPlainly.__deepcopy__(SignatureForm.base_fields, {})


def _differences() -> dict[str, dict[str, tuple[bool, bool]]]:
    """Per field, each path where Django and the plain copier disagree: (Django, plain)."""
    django, plain = _django_copies(), _plain_copies()
    assert set(django) == set(plain)
    differences = {}
    for name, original in SignatureForm.base_fields.items():
        by_django = copied_paths(original, django[name])
        by_plain = copied_paths(original, plain[name])
        differing = {
            path: (by_django.get(path), by_plain.get(path))
            for path in by_django.keys() | by_plain.keys()
            if by_django.get(path) != by_plain.get(path)
        }
        if differing:
            differences[name] = differing
    return differences


def test_the_plain_copier_copies_exactly_what_django_copies_for_every_sign_form_field():
    assert _differences() == {}
    # What the docstring promises, checked on one field so a vacuous walk cannot pass.
    paths = copied_paths(SignatureForm.base_fields["email"], _plain_copies()["email"])
    fresh = {path for path, is_fresh in paths.items() if is_fresh}
    assert fresh == {
        "field",
        "field.widget",
        "field.widget.attrs",
        "field.error_messages",
        "field.validators",
    }


def _copying_validators_too(original_deepcopy):
    def patched(self, memo):
        result = original_deepcopy(self, memo)
        result.validators = [copy.copy(validator) for validator in self.validators]
        return result

    return patched


def _sharing_error_messages(original_deepcopy):
    def patched(self, memo):
        result = original_deepcopy(self, memo)
        result.error_messages = self.error_messages
        return result

    return patched


@pytest.mark.parametrize(
    "change", [_copying_validators_too, _sharing_error_messages], ids=lambda c: c.__name__
)
def test_a_change_to_what_django_copies_is_noticed(monkeypatch, change):
    monkeypatch.setattr(forms.Field, "__deepcopy__", change(forms.Field.__deepcopy__))
    assert _differences() != {}


def test_django_builds_each_sign_form_through_the_plain_copier(monkeypatch):
    calls = []
    original = FieldsCopiedPlainly.__deepcopy__

    def spy(self, memo):
        calls.append(self)
        return original(self, memo)

    monkeypatch.setattr(FieldsCopiedPlainly, "__deepcopy__", spy)
    form = SignatureForm(consent_wording="Keep me posted")
    assert calls == [SignatureForm.base_fields]
    assert form.fields["email"] is not SignatureForm.base_fields["email"]
