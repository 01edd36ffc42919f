"""``manage.py edge_inventory`` on the synthetic Supabase tree under tests/fixtures/legacy_supabase."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from controlplane import edge_functions
from controlplane.edge_inventory import EXECUTION_CRITICAL, SIDE_EFFECT_ONLY, STATE_MUTATING, build_inventory
from controlplane.legacy import REPLACEMENTS

TREE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_supabase"
CLIENT = TREE / "client" / "src"
MIGRATED_CLIENT = TREE / "client-migrated" / "src"
ORDER_WRITERS = ["live-trading", "kraken-trading", "coinbase-trading", "binance-us-trading", "hyperliquid"]


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("edge_inventory", *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exc:
        status = exc.code
    return status, out.getvalue(), err.getvalue()


def as_json(*args: str) -> dict:
    status, out, _ = run(*args, "--format", "json")
    return json.loads(out) | {"_status": status}


def by_name(report: dict) -> dict[str, dict]:
    return {f["name"]: f for f in report["functions"]}


def test_every_class_is_found_from_the_code_with_its_evidence_line():
    functions = by_name(as_json(str(TREE), "--client-src", str(CLIENT)))

    assert functions["user-preferences"]["class"] == STATE_MUTATING
    assert functions["create-starter-bots"]["class"] == STATE_MUTATING
    assert functions["market-hours"]["class"] == SIDE_EFFECT_ONLY
    assert functions["send-sms-alert"]["class"] == SIDE_EFFECT_ONLY
    assert functions["send-sms-alert"]["evidence"][0]["kind"] == "notification"
    # The stage write on the bots table, the kill table, the runner claim and the lab are execution critical.
    for name in ["promote-bot", "kill-engine", "runner-tick", "strategy-lab-scheduler", "backtest-matrix-runner"]:
        assert functions[name]["class"] == EXECUTION_CRITICAL, name
    assert {"kind": "table-write", "detail": "upsert user_preferences", "critical": False} | {
        "file": "supabase/functions/user-preferences/index.ts",
        "line": 6,
    } in functions["user-preferences"]["evidence"]
    assert functions["promote-bot"]["evidence"][0]["detail"] == "update bots (stage or kill state)"


def test_the_five_direct_order_writers_and_the_two_arbitrage_functions_are_execution_critical():
    functions = by_name(as_json(str(TREE), "--client-src", str(CLIENT)))

    for name in ORDER_WRITERS + ["cross-exchange-arbitrage", "funding-arbitrage"]:
        assert functions[name]["class"] == EXECUTION_CRITICAL, name
    live = [(e["detail"], e["line"]) for e in functions["live-trading"]["evidence"]]
    assert live == [("insert orders", 9), ("insert fills", 12)]
    kraken = functions["kraken-trading"]["evidence"]
    assert kraken[0]["kind"] == "broker-call"
    assert kraken[0]["detail"] == "fetch https://api.kraken.com/0/private/AddOrder"  # through the file's constant
    assert functions["hyperliquid"]["evidence"][-1] == {
        "kind": "table-write",
        "detail": "update positions",
        "file": "supabase/functions/hyperliquid/index.ts",
        "line": 9,
        "critical": True,
    }


def test_writes_in_shared_helpers_are_charged_to_the_functions_that_import_them():
    functions = by_name(as_json(str(TREE), "--client-src", str(CLIENT)))

    coinbase = functions["coinbase-trading"]
    assert "supabase/functions/_shared/venue-orders.ts" in coinbase["files"]
    assert [(e["detail"], e["file"], e["line"]) for e in coinbase["evidence"]] == [
        ("insert orders", "supabase/functions/_shared/venue-orders.ts", 6)
    ]
    arbitrage = functions["cross-exchange-arbitrage"]["evidence"]
    assert ("insert multi_leg_intents", "supabase/functions/_shared/oms-client.ts", 8) in [
        (e["detail"], e["file"], e["line"]) for e in arbitrage
    ]


def test_unused_means_no_client_cron_or_function_invokes_it_and_a_commented_call_does_not_count():
    functions = by_name(as_json(str(TREE), "--client-src", str(CLIENT)))

    assert functions["system-health-audit"]["unused"] is True
    assert functions["system-health-audit"]["decision"]["decision"] == "DELETE"
    # Bots.tsx only mentions live-trading in a comment.
    assert functions["live-trading"]["unused"] is True
    assert functions["runner-tick"]["invoked_by"] == ["cron supabase/migrations/20260101000000_cron_runner_tick.sql:5"]
    assert functions["send-sms-alert"]["invoked_by"] == [
        "function kill-engine (supabase/functions/kill-engine/index.ts:7)"
    ]
    assert functions["send-sms-alert"]["unused"] is False


def test_without_client_sources_unused_is_unknown_rather_than_guessed():
    report = as_json(str(TREE))

    assert {f["unused"] for f in report["functions"]} == {None}
    assert report["_status"] == 0


def test_client_call_sites_in_ts_and_tsx_with_file_and_line():
    report = as_json(str(TREE), "--client-src", str(CLIENT))
    sites = {(Path(s["file"]).name, s["line"], s["kind"], s["target"]) for s in report["call_sites"]}

    assert sites == {
        ("Bots.tsx", 5, "invoke", "promote-bot"),
        ("Bots.tsx", 6, "invoke", "create-starter-bots"),
        ("Preferences.tsx", 4, "invoke", "user-preferences"),
        ("api.ts", 4, "functions-path", "kill-engine"),
        ("api.ts", 8, "functions-host", "market-hours"),
        ("api.ts", 13, "invoke", "cross-exchange-arbitrage"),
        ("supabase.ts", 3, "create-client", "createClient"),
        ("supabase.ts", 6, "auth", "auth.getSession"),
    }


def test_exit_status_is_non_zero_while_a_dangerous_function_is_invoked_from_the_client():
    status, out, err = run(str(TREE), "--client-src", str(CLIENT))

    assert status == 3
    assert "- promote-bot (EXECUTION CRITICAL): client " in out
    assert "- user-preferences (STATE MUTATING): client " in out
    assert "market-hours (SIDE EFFECT ONLY)" not in out  # a read-only function still invoked is not the failure
    assert "Still invoked from client sources: create-starter-bots" in err


def test_exit_status_is_zero_once_the_client_calls_only_harmless_functions():
    status, out, _ = run(str(TREE), "--client-src", str(MIGRATED_CLIENT))

    assert status == 0
    assert "No EXECUTION CRITICAL or STATE MUTATING function is invoked from the client sources." in out


def test_a_side_effect_only_function_still_invoked_does_not_fail_the_run(tmp_path):
    (tmp_path / "hours.tsx").write_text('const hours = () => supabase.functions.invoke("market-hours", {});\n')

    status, out, _ = run(str(TREE), "--client-src", str(tmp_path))

    assert status == 0
    assert f"| {tmp_path}/hours.tsx:1 | invoke | market-hours |" in out


def test_a_call_to_a_function_the_tree_lacks_is_listed_without_a_class(tmp_path):
    (tmp_path / "old.ts").write_text("fetch(`${URL}/functions/v1/nightly-report`);\n")

    status, out, _ = run(str(TREE), "--client-src", str(tmp_path))

    assert status == 0
    assert f"- nightly-report at {tmp_path}/old.ts:1" in out


def test_a_dynamic_invoke_fails_because_nobody_can_tell_what_it_calls(tmp_path):
    (tmp_path / "app.ts").write_text("export const go = (name: string) => supabase.functions.invoke(name, {});\n")

    status, out, _ = run(str(TREE), "--client-src", str(tmp_path))

    assert status == 3
    assert f"a dynamic functions.invoke at {tmp_path}/app.ts:1" in out


def test_markdown_has_the_summary_functions_call_sites_and_decision_table():
    _, out, _ = run(str(TREE), "--client-src", str(CLIENT))

    assert "| EXECUTION CRITICAL | 12 |\n| STATE MUTATING | 2 |\n| SIDE EFFECT ONLY | 3 |" in out
    assert "| UNUSED (also counted in its class) | 9 |" in out
    assert "The audit this replaces counted 99 functions: 27 EXECUTION CRITICAL, 21 STATE MUTATING" in out
    assert (
        "| live-trading | EXECUTION CRITICAL | UNUSED | - | insert orders (supabase/functions/live-trading/index.ts:9); "
        "insert fills (supabase/functions/live-trading/index.ts:12) |"
    ) in out
    assert "| promote-bot | DELETE | POST /api/bots/{id}/promote | decision table |" in out
    assert "| user-preferences | MIGRATE | MISSING | not in the table |" in out
    assert "| strategy-lab-scheduler | MIGRATE | the /api/lab/experiments endpoints | decision table |" in out


def test_the_decision_table_is_the_one_the_410_guard_answers_with():
    report = by_name(as_json(str(TREE), "--client-src", str(CLIENT)))

    for name, row in report.items():
        if row["decision"]["in_table"]:
            assert row["decision"]["replacement"] == edge_functions.replacement_for(name)
    assert REPLACEMENTS is edge_functions.REPLACEMENTS
    assert edge_functions.decision_for("backtest-classifier").decision == edge_functions.Decision.MIGRATE
    assert edge_functions.decision_for("send-2fa-code").replacement == "POST /api/auth/2fa/send"
    assert not any(d == edge_functions.Decision.KEEP for d, _ in edge_functions.DECISIONS.values())


def test_out_writes_the_report_to_the_file_and_nothing_to_stdout(tmp_path):
    target = tmp_path / "inventory.json"

    status, out, err = run(str(TREE), "--client-src", str(MIGRATED_CLIENT), "--format", "json", "--out", str(target))

    assert status == 0
    assert out == ""
    assert f"Wrote {target}." in err
    assert json.loads(target.read_text())["summary"]["functions"] == 17


def _copy_tree(tmp_path: Path) -> Path:
    shutil.copytree(TREE / "supabase", tmp_path / "old" / "supabase")
    return tmp_path / "old"


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda root: shutil.rmtree(root / "supabase" / "functions"), "has no supabase/functions folder"),
        (lambda root: (root / "supabase" / "functions" / "empty-fn").mkdir(), "empty-fn has no entry file"),
        (
            lambda root: (root / "supabase" / "functions" / "_shared" / "cors.ts").write_bytes(b"\xff\xfe\x00bad"),
            "Cannot read",
        ),
        (
            lambda root: (root / "supabase" / "functions" / "hyperliquid" / "index.ts").write_text(
                'import { x } from "../_shared/gone.ts";\n'
            ),
            "imports ../_shared/gone.ts, which does not exist",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_nothing_is_written(tmp_path, breakage, message):
    root = _copy_tree(tmp_path)
    breakage(root)
    target = tmp_path / "report.md"

    with pytest.raises(CommandError, match=message):
        call_command("edge_inventory", str(root), "--out", str(target), stdout=io.StringIO())
    assert not target.exists()


def test_a_missing_path_or_client_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("edge_inventory", str(tmp_path / "nowhere"), stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("edge_inventory", str(TREE), "--client-src", str(tmp_path / "no-src"), stdout=io.StringIO())


def test_the_library_call_gives_the_same_classes_as_the_command():
    inventory = build_inventory(TREE, [CLIENT])

    assert inventory.counts() == {EXECUTION_CRITICAL: 12, STATE_MUTATING: 2, SIDE_EFFECT_ONLY: 3, "UNUSED": 9}
    assert [f.name for f in inventory.still_invoked()] == [
        "create-starter-bots",
        "cross-exchange-arbitrage",
        "kill-engine",
        "promote-bot",
        "user-preferences",
    ]
