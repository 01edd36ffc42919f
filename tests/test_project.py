"""Project-wide rules: migrations match the models, imports point one way, ruff is clean, the docs list what the code has."""

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from controlplane.errors import ErrorCode

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_migrations_match_the_models():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_imports_itself_through_a_circle():
    """Layers keep apps and execution's packages apart; this keeps modules apart: no strongly connected component of
    more than one module anywhere in the apps (Tarjan's algorithm over grimp's graph, function-level imports too)."""
    import grimp

    apps = ["controlplane", "integrations", "traces", "bots", "execution", "backtests", "oversight", "observatory"]
    graph = grimp.build_graph(*apps, cache_dir=None)
    modules = {m for m in graph.modules if ".migrations" not in m}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    assert circles == []


@pytest.mark.parametrize("command", [["format", "--check", "--diff"], ["check"]], ids=["format", "lint"])
def test_ruff_format_and_lint_are_clean(command):
    """ruff.toml holds the rules; `ruff format .` and `ruff check --fix .` repair most findings."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ruff"), *command, "."], cwd=BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_lists_every_error_code():
    readme = (BASE_DIR / "README.md").read_text()
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in readme]
    assert missing == []


def test_env_example_documents_every_variable_the_settings_read():
    sources = (BASE_DIR / "controlplane" / "settings.py").read_text() + (
        BASE_DIR / "controlplane" / "devstack.py"
    ).read_text()
    names = set(re.findall(r'env\.(?:str|int|bool|list|float|db_url|get)\("([A-Z][A-Z0-9_]+)"', sources))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.M))
    assert names - documented == set()


def test_every_app_beat_schedule_survives_in_settings():
    from django.conf import settings

    from celery.schedules import crontab

    assert {"bots-watchdog", "integrations-reverify", "ticks-1m"} <= set(settings.CELERY_BEAT_SCHEDULE)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        schedule = entry["schedule"]
        period = schedule if isinstance(schedule, (int, float)) else 60
        assert isinstance(schedule, (int, float, crontab)), name
        assert 0 < entry["options"]["expires"] and (
            not isinstance(schedule, (int, float)) or entry["options"]["expires"] <= period
        ), name


def test_provider_fakes_import_nothing_of_the_test_tools_at_import_time():
    """The fake servers live beside their providers (integrations/providers/<name>/fake.py), where production code
    could import them: at module level they import no test tool (pytest, pytest-httpserver, or werkzeug, which
    only pytest-httpserver brings); the server instance is passed in."""
    import ast

    test_tools = {"pytest", "pytest_httpserver", "werkzeug", "tests"}
    fakes = sorted((BASE_DIR / "integrations" / "providers").glob("**/*fake.py"))
    assert len(fakes) >= 7
    for path in fakes:
        for node in ast.parse(path.read_text()).body:  # module level only; TYPE_CHECKING blocks are not run
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in test_tools, f"{path.relative_to(BASE_DIR)} imports {name}"
