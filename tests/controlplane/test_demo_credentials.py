"""`make run`'s admin password and API token reach a terminal once, and never a log file."""

import io

import pytest
from django.core.management import call_command
from knox.crypto import hash_token

from controlplane.models import ApiToken

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _ensure_demo(stream) -> str:
    call_command("ensure_demo", stdout=stream)
    return stream.getvalue()


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


def test_the_first_run_shows_the_credentials_on_a_terminal_and_later_runs_do_not(data_dir):
    first = _ensure_demo(Terminal())
    password = (data_dir / "admin-password").read_text()
    token = next(line for line in first.splitlines() if line.startswith("API token:")).split()[-1]
    assert f"Password:    {password}" in first
    assert ApiToken.objects.get(user__username="admin").digest == hash_token(token)
    later = _ensure_demo(Terminal())
    assert password not in later and token not in later
    assert str(data_dir / "admin-password") in later and "not printed" in later


def test_output_that_is_not_a_terminal_never_gets_them(data_dir):
    logged = _ensure_demo(io.StringIO())  # make run > run.log
    password = (data_dir / "admin-password").read_text()
    assert password and password not in logged
    assert "API token:   not printed" in logged and ApiToken.objects.filter(user__username="admin").count() == 1
    assert "Admin user:  admin" in logged and str(data_dir / "admin-password") in logged
    assert (data_dir / "admin-password").stat().st_mode & 0o077 == 0
