"""`manage.py supporters_import`: the contract other scripts rely on, and its refusals."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bench.worker_processes import current_database_url
from supporters.models import Supporter, SupporterImport, Tag

CONSENT = ["--consent-source", "Stall at the book fair", "--consent-wording", "Email me"]
ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_one_json_line_last_with_the_contract_keys(tmp_path):
    """Run as the outside scripts do: a process, stdout's last line."""
    path = write(tmp_path, "Email,First name\nann@example.org,Ann\nbob@example.org,Bob\nbad,X\n")
    env = {"DATABASE_URL": current_database_url(), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and arguments
        [sys.executable, "manage.py", "supporters_import", str(path), "--tag", "fair", *CONSENT],
        cwd=ROOT, env={**__import__("os").environ, **env}, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert {"rows", "created", "merged", "rejected", "seconds"} <= set(result)
    assert (result["rows"], result["created"], result["merged"], result["rejected"]) == (3, 2, 0, 1)
    assert result["seconds"] >= 0
    assert "Read 3 rows" in completed.stderr


@pytest.mark.django_db(transaction=True)
def test_map_names_a_column_the_guess_does_not_know(tmp_path):
    path = write(tmp_path, "Contact;Who\nann@example.org;Ann\n")
    stdout = io.StringIO()
    call_command(
        "supporters_import", str(path), "--tag", "fair", *CONSENT,
        "--map", "Contact=email", "--map", "who=first_name", stdout=stdout, stderr=io.StringIO(),
    )  # fmt: skip
    assert json.loads(stdout.getvalue().splitlines()[-1])["created"] == 1
    assert Supporter.objects.get().first_name == "Ann"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("text", "arguments", "message"),
    [
        ("Name,Phone\nAnn,1\n", ["--tag", "t", *CONSENT], "No column holds the email address"),
        ("Email\na@example.org\n", ["--tag", "t"], "consent source"),
        ("Email\na@example.org\n", ["--tag", "t", "--consent-source", "x"], "consent source"),
        ("Email\na@example.org\n", CONSENT, "at least one tag"),
        ("Email\na@example.org\n", ["--tag", "t", *CONSENT, "--map", "Phone=email"], "no column"),
        ("", ["--tag", "t", *CONSENT], "empty"),
    ],
)
def test_a_request_that_cannot_work_fails_clearly_before_anything_is_written(
    tmp_path, text, arguments, message
):
    path = write(tmp_path, text)
    with pytest.raises(CommandError, match=message):
        call_command("supporters_import", str(path), *arguments, stdout=io.StringIO(),
                     stderr=io.StringIO())  # fmt: skip
    assert not SupporterImport.objects.exists()
    assert not Supporter.objects.exists() and not Tag.objects.exists()


@pytest.mark.django_db
def test_a_missing_file_fails_clearly(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("supporters_import", str(tmp_path / "nope.csv"), "--tag", "t", *CONSENT)
