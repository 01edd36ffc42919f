"""`make run`'s admin password and API token reach a terminal once, and never a log file."""

import io

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

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
    token = Token.objects.get(user__username="admin").key
    assert f"Password:    {password}" in first and f"API token:   {token}" in first
    later = _ensure_demo(Terminal())
    assert password not in later and token not in later
    assert str(data_dir / "admin-password") in later and "not printed" in later


def test_output_that_is_not_a_terminal_never_gets_them(data_dir):
    logged = _ensure_demo(io.StringIO())  # make run > run.log
    password = (data_dir / "admin-password").read_text()
    assert password and password not in logged
    assert Token.objects.get(user__username="admin").key not in logged
    assert "Admin user:  admin" in logged and str(data_dir / "admin-password") in logged
    assert (data_dir / "admin-password").stat().st_mode & 0o077 == 0
