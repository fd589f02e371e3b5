"""`manage.py supporter_data_export EMAIL` and `manage.py supporter_erase EMAIL`, as scripts
run them: exit codes, stdout and stderr of the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.worker_processes import current_database_url
from supporters.models import Supporter
from tests.privacy.conftest import EMAIL

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": current_database_url(),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_data_export_command_prints_json_or_refuses_an_unknown_address_with_status_1(zelda):
    known = manage("supporter_data_export", EMAIL.upper())
    assert known.returncode == 0, known.stderr
    assert json.loads(known.stdout)["profile"]["email"] == EMAIL

    unknown = manage("supporter_data_export", "nobody@example.org")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert "No supporter has that address." in unknown.stderr


@pytest.mark.django_db(transaction=True)
def test_erase_command_erases_and_says_so_in_one_line(zelda):
    erased = manage("supporter_erase", EMAIL)
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.splitlines() == [
        f"Erased supporter #{zelda.pk}: personal data removed from 11 tables; "
        "the address is on the suppression list."
    ]
    zelda.refresh_from_db()
    assert zelda.status == Supporter.Status.ERASED

    never_held = manage("supporter_erase", "stranger@example.org")
    assert never_held.stdout.splitlines() == [
        "No supporter has that address, and nothing names it; "
        "the address is on the suppression list."
    ]
    again = manage("supporter_erase", EMAIL)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        "No supporter has that address; it was on the suppression list already."
    ]
