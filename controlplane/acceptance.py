"""The master spec's PHASE 6 acceptance checks, run against a running portal over HTTP: the evidence it asks for
("command outputs + curl proofs"), one check at a time, each ending PASS, FAIL or NOT VERIFIED.

It speaks to the portal only through its public API with an operator's token (the core imports no app, and an
operator runs this against production, where nothing but HTTP reaches the server). What HTTP cannot show is said,
never assumed: the server's log lines are read only from a log file the operator names, the console's observatory
page needs a staff session (so the rows it renders are read from the API that serves them), and a tick is run by
beat, so the check starts a runner for a bot that is not LIVE and waits for the tick rather than fake one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from controlplane import edge_functions
from controlplane.edge_inventory import (
    EDGE_CALL_KINDS,
    InventoryError,
    blank_comments,
    call_sites,
    client_files,
    read_source,
)

PASS, FAIL, NOT_VERIFIED = "PASS", "FAIL", "NOT VERIFIED"
# PHASE 2's families, named by prefix: one member of each is called as well.
PREFIX_EXAMPLES = ("backtest-scheduler", "strategy-lab-worker")


@dataclass
class Answer:
    status: int
    body: dict | list | None
    trace_id: str
    curl: str

    def get(self, key: str, default=None):
        return self.body.get(key, default) if isinstance(self.body, dict) else default


@dataclass
class Check:
    number: int
    title: str
    verdict: str = FAIL
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)

    def show(self, answer: Answer, *, body: bool = True) -> None:
        self.say(f"$ {answer.curl}")
        shown = json.dumps(answer.body, default=str) if body else "..."
        self.say(f"  -> {answer.status} (X-Trace-Id {answer.trace_id or '-'}) {_clip(shown)}")

    def finish(self, verdict: str, why: str) -> Check:
        self.verdict = verdict
        self.say(f"{verdict}: {why}")
        return self


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Portal:
    """The running portal's API with one token; each call is also written as the curl command that repeats it."""

    def __init__(self, base_url: str, token: str, *, tenant: str | None = None, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.tenant = tenant
        if tenant:
            self.session.headers["X-Tenant"] = tenant
        self.timeout = timeout

    def call(self, method: str, path: str, *, payload: dict | None = None, trace_id: str | None = None) -> Answer:
        headers = {"X-Trace-Id": trace_id} if trace_id else {}
        response = self.session.request(
            method, self.base_url + path, json=payload, headers=headers, timeout=self.timeout
        )
        try:
            body = response.json()
        except ValueError:
            body = {"_text": response.text[:300]}
        return Answer(
            response.status_code,
            body,
            response.headers.get("X-Trace-Id", ""),
            self._curl(method, path, payload, trace_id),
        )

    def _curl(self, method: str, path: str, payload: dict | None, trace_id: str | None) -> str:
        parts = ["curl -s", f"-X {method}", '-H "Authorization: Token $CONTROLPLANE_TOKEN"']
        if self.tenant:
            parts.append(f'-H "X-Tenant: {self.tenant}"')
        if trace_id:
            parts.append(f'-H "X-Trace-Id: {trace_id}"')
        if payload is not None:
            parts.append(f"-H 'Content-Type: application/json' -d '{json.dumps(payload)}'")
        parts.append(self.base_url + path)
        return " ".join(parts)


def new_trace_id(label: str) -> str:
    return f"acceptance-{label}-{uuid.uuid4().hex[:12]}"


def poll(read: Callable[[], object], *, timeout: float, interval: float = 1.0):
    """``read()`` until it returns something truthy or ``timeout`` seconds pass; the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# 1 ---------------------------------------------------------------------------------------------------------------


def check_no_edge_invocation(client_src: list[str]) -> Check:
    check = Check(1, "no edge invocation in the client sources")
    if not client_src:
        return check.finish(NOT_VERIFIED, "no --client-src DIR given: there was nothing to search.")
    check.say(
        f'$ rg -n "supabase\\.functions\\.invoke|functions\\.supabase\\.co|/functions/v1/" {" ".join(client_src)}'
    )
    found, auth = [], []
    for directory in client_src:
        root = Path(directory)
        if not root.is_dir():
            return check.finish(FAIL, f"{directory} is not a directory.")
        for path in client_files(root):
            try:
                sites = call_sites(blank_comments(read_source(path)), str(path), with_auth=True)
            except InventoryError as exc:
                return check.finish(FAIL, str(exc))
            found += [s for s in sites if s.kind in EDGE_CALL_KINDS]
            auth += [s for s in sites if s.kind not in EDGE_CALL_KINDS]
    for site in found:
        check.say(f"  {site.where}: {site.kind} {site.target}")
    if not found:
        check.say("  (none)")
    for site in auth:
        check.say(f"  note: Supabase client or auth use at {site.where} ({site.target}): not an edge invocation")
    if found:
        return check.finish(FAIL, f"{len(found)} edge invocation(s) remain in the client sources.")
    return check.finish(PASS, "no supabase.functions.invoke, functions.supabase.co or /functions/v1/ call.")


# 2 ---------------------------------------------------------------------------------------------------------------


def _log_lines_with(log_file: Path, trace_ids: set[str]) -> set[str]:
    """The trace ids among ``trace_ids`` that a ``[EDGE_CALL_BLOCKED]`` line of the JSON log carries."""
    seen = set()
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return seen
    for line in text.splitlines():
        if "[EDGE_CALL_BLOCKED]" not in line:
            continue
        try:
            record = json.loads(line)
            trace = record.get("trace_id") if isinstance(record, dict) else None
        except ValueError:
            trace = None
        if trace in trace_ids:
            seen.add(trace)
        else:
            seen.update(t for t in trace_ids if t in line)
    return seen


def check_edge_calls_blocked(portal: Portal, log_file: str | None) -> Check:
    check = Check(2, "every retired edge function answers 410 EDGE_CALL_BLOCKED naming its replacement")
    names = sorted(edge_functions.DECISIONS) + list(PREFIX_EXAMPLES)
    wrong, sent = [], {}
    for name in names:
        expected = edge_functions.replacement_for(name)
        trace_id = new_trace_id("edge")
        answer = portal.call("POST", f"/functions/v1/{name}", payload={}, trace_id=trace_id)
        sent[trace_id] = name
        ok = (
            answer.status == 410
            and answer.get("error_code") == "EDGE_CALL_BLOCKED"
            and expected in (answer.get("suggested_fix") or "")
            and answer.get("trace_id") == trace_id
        )
        if name == names[0] or not ok:
            check.show(answer)
        check.say(f"  {name}: {answer.status} {answer.get('error_code')} -> {answer.get('suggested_fix')}")
        if not ok:
            wrong.append(name)
    if wrong:
        return check.finish(FAIL, f"{', '.join(wrong)} did not answer 410 EDGE_CALL_BLOCKED with its replacement.")
    if not log_file:
        return check.finish(
            NOT_VERIFIED,
            f"all {len(names)} names answered 410 with their replacement and trace id; the [EDGE_CALL_BLOCKED] "
            "log line is on the server, which HTTP cannot read: give --log-file PATH (the portal's JSON log).",
        )
    path = Path(log_file)
    if not path.is_file():
        return check.finish(FAIL, f"--log-file {log_file} is not a readable file.")
    check.say(f"$ grep '\\[EDGE_CALL_BLOCKED\\]' {log_file} | grep -c -e <each trace id sent>")
    # The server may flush its log a moment after answering: read until every line is there or 5 s pass.
    poll(lambda: len(_log_lines_with(path, set(sent))) == len(sent), timeout=5.0, interval=0.5)
    seen = _log_lines_with(path, set(sent))
    missing = [sent[t] for t in sent if t not in seen]
    check.say(f"  {len(seen)} of {len(sent)} calls have their [EDGE_CALL_BLOCKED] line with the trace id")
    if missing:
        return check.finish(FAIL, f"no [EDGE_CALL_BLOCKED] log line with the trace id for: {', '.join(missing)}.")
    return check.finish(PASS, f"all {len(names)} names answered 410 and were logged with their trace id.")


# 3 ---------------------------------------------------------------------------------------------------------------


def check_system_status(portal: Portal) -> Check:
    check = Check(3, "GET /api/system/status is BLOCKED with blockers while keys are missing")
    answer = portal.call("GET", "/api/system/status", trace_id=new_trace_id("status"))
    check.show(answer, body=False)
    if answer.status != 200 or not isinstance(answer.body, dict):
        return check.finish(FAIL, f"the status endpoint answered {answer.status}.")
    status, allowed = answer.get("status"), answer.get("autonomy_allowed")
    blockers = answer.get("blockers") or []
    blocking = [b for b in blockers if b.get("severity") == "blocking"]
    degrading = [b for b in blockers if b.get("severity") != "blocking"]
    check.say(f"  status={status} autonomy_allowed={allowed} blocking={len(blocking)} degrading={len(degrading)}")
    for b in blockers:
        what = b.get("provider") or b.get("component") or "-"
        check.say(f"  [{b.get('severity')}] {b.get('code')} {what}: {b.get('suggested_fix') or '(no suggested fix)'}")
    missing_keys = [b for b in blocking if b.get("code") == "INTEGRATION_KEY_MISSING"]
    unfixed = [b for b in blockers if not b.get("suggested_fix")]
    if unfixed:
        return check.finish(FAIL, f"{len(unfixed)} blocker(s) carry no suggested fix.")
    if status == "BLOCKED":
        if not blocking or allowed is not False:
            return check.finish(FAIL, "BLOCKED must list its blocking causes and forbid autonomy.")
        why = "keys are missing" if missing_keys else "something blocks (not keys)"
        return check.finish(PASS, f"BLOCKED with {len(blocking)} blocker(s): {why}.")
    if status == "DEGRADED":
        if blocking or not degrading or allowed is not False:
            return check.finish(FAIL, "DEGRADED must list only degrading causes and forbid autonomy.")
        return check.finish(PASS, "keys are configured; DEGRADED, for the degrading causes listed above.")
    if status == "OK":
        if blockers or allowed is not True:
            return check.finish(FAIL, "OK with blockers listed, or OK without autonomy, contradicts itself.")
        return check.finish(PASS, "keys are configured and nothing blocks or degrades: OK.")
    return check.finish(FAIL, f"unknown status {status!r}.")


# 4 ---------------------------------------------------------------------------------------------------------------


def _bot_with_missing_keys(portal: Portal, check: Check) -> int | None:
    """A bot whose data source (or, LIVE, venue) lacks keys, by the integrations status the safe start reads."""
    providers = portal.call("GET", "/api/integrations/status")
    bots = portal.call("GET", "/api/bots?limit=200")
    check.show(providers, body=False)
    check.show(bots, body=False)
    if providers.status != 200 or bots.status != 200:
        return None
    missing = {row["provider"] for row in providers.get("providers", []) if row.get("missing_env_vars")}
    results = bots.get("results", []) if isinstance(bots.body, dict) else bots.body or []
    for bot in results:
        if bot.get("data_source") in missing or (bot.get("stage") == "LIVE" and bot.get("venue") in missing):
            return bot["id"]
    return None


def check_safe_start(portal: Portal, bot_id: int | None) -> Check:
    check = Check(4, "POST /api/runners/start for a bot with missing keys answers INTEGRATION_KEY_MISSING")
    if bot_id is None:
        bot_id = _bot_with_missing_keys(portal, check)
        if bot_id is None:
            return check.finish(NOT_VERIFIED, "no bot whose keys are missing was found; give --bot ID.")
        check.say(f"  bot {bot_id} has a provider with missing keys")
    trace_id = new_trace_id("start")
    answer = portal.call("POST", "/api/runners/start", payload={"bot_id": bot_id}, trace_id=trace_id)
    check.show(answer)
    if answer.status in (200, 201):
        runner_id = answer.get("id")
        stop = portal.call(
            "POST", f"/api/runners/{runner_id}/stop", payload={"reason": "acceptance check 4: started by mistake"}
        )
        check.show(stop, body=False)
        return check.finish(FAIL, f"the runner started (its keys are not missing); runner {runner_id} was stopped.")
    if answer.get("error_code") != "INTEGRATION_KEY_MISSING":
        return check.finish(FAIL, f"answered {answer.status} {answer.get('error_code')}, not INTEGRATION_KEY_MISSING.")
    if answer.get("trace_id") != trace_id:
        return check.finish(FAIL, f"the error body's trace id {answer.get('trace_id')!r} is not the request's.")
    return check.finish(PASS, f"{answer.status} INTEGRATION_KEY_MISSING with trace id {trace_id}, no runner started.")


# 5 ---------------------------------------------------------------------------------------------------------------


def _newest_usage_id(portal: Portal) -> int:
    answer = portal.call("GET", "/api/integrations/usage?limit=1")
    events = answer.get("events") or []
    return events[0]["id"] if events else 0


def _new_usage(portal: Portal, after: int, *, provider: str | None = None) -> list[dict]:
    query = "?limit=500" + (f"&provider={provider}" if provider else "")
    return [e for e in portal.call("GET", f"/api/integrations/usage{query}").get("events") or [] if e["id"] > after]


def _status_rows(portal: Portal) -> dict[str, dict]:
    return {row["provider"]: row for row in portal.call("GET", "/api/integrations/status").get("providers") or []}


def check_proof_of_use(portal: Portal, *, provider: str | None, tick_bot: int | None, tick_timeout: float) -> Check:
    check = Check(5, "a verify and one bot tick add integration_usage_events, and the observatory's rows show them")
    baseline = _newest_usage_id(portal)
    rows_before = _status_rows(portal)
    check.say(f"  newest usage event before: {baseline or 'none'}")
    if provider is None:
        configured = [p for p, row in rows_before.items() if row.get("configured") and p != "redis"]
        provider = configured[0] if configured else None
    if provider is None:
        return check.finish(
            NOT_VERIFIED,
            "no provider has its keys configured: a verify without keys calls nobody, so no usage event can be "
            "recorded. Enter a key (or give --verify-provider) and run again.",
        )
    trace_id = new_trace_id("verify")
    verify = portal.call("POST", "/api/integrations/verify", payload={"provider": provider}, trace_id=trace_id)
    check.show(verify)
    verify_events = poll(
        lambda: [e for e in _new_usage(portal, baseline, provider=provider) if e["trace_id"] == trace_id], timeout=5.0
    )
    for event in verify_events:
        check.say(f"  verify event {event['id']}: {event['provider']} {event['operation']} {event['status']}")
    if not verify_events:
        return check.finish(FAIL, f"the verify of {provider} recorded no usage event with its trace id {trace_id}.")

    if tick_bot is None:
        return check.finish(
            NOT_VERIFIED,
            "the verify recorded its usage event; a tick is run by beat, not by an HTTP call: give --tick-bot ID "
            "(a bot that is not LIVE, or one with a running runner) to watch one tick.",
        )
    traces = portal.call("GET", f"/api/bots/{tick_bot}/traces?limit=1")
    check.show(traces, body=False)
    if traces.status != 200:
        return check.finish(FAIL, f"bot {tick_bot}'s traces answered {traces.status}.")
    newest_trace = (traces.get("results") or [{"id": 0}])[0]["id"]
    runners = portal.call("GET", f"/api/runners?bot={tick_bot}&status=RUNNING")
    running = runners.get("results") or []
    started = None
    if not running:
        bot = portal.call("GET", f"/api/bots/{tick_bot}")
        if bot.get("stage") == "LIVE":
            return check.finish(NOT_VERIFIED, f"bot {tick_bot} is LIVE and not running; the check starts no LIVE bot.")
        start = portal.call("POST", "/api/runners/start", payload={"bot_id": tick_bot}, trace_id=new_trace_id("tick"))
        check.show(start)
        if start.status != 201:
            return check.finish(FAIL, f"bot {tick_bot}'s runner did not start: {start.get('error_code')}.")
        started = start.get("id")
    try:
        check.say(f"  waiting up to {tick_timeout:.0f}s for bot {tick_bot}'s next tick (beat runs it)")
        ticked = poll(
            lambda: [
                t
                for t in portal.call("GET", f"/api/bots/{tick_bot}/traces?limit=5").get("results") or []
                if t["id"] > newest_trace
            ],
            timeout=tick_timeout,
            interval=2.0,
        )
    finally:
        if started is not None:
            stop = portal.call(
                "POST", f"/api/runners/{started}/stop", payload={"reason": "acceptance check 5: one tick"}
            )
            check.show(stop, body=False)
    if not ticked:
        return check.finish(
            FAIL, f"bot {tick_bot} did not tick within {tick_timeout:.0f}s: are the worker and beat running?"
        )
    check.say(f"  tick trace {ticked[0]['id']}: {ticked[0]['kind']} {ticked[0].get('reason_code') or ''}")
    tick_events = [e for e in _new_usage(portal, baseline) if e["trace_id"] != trace_id]
    for event in tick_events[:10]:
        check.say(
            f"  tick event {event['id']}: {event['provider']} {event['operation']} {event['status']} bot {event['bot_id']}"
        )
    if not tick_events:
        return check.finish(FAIL, "the tick recorded no usage event (did it read its bars from stored data only?).")
    rows_after = _status_rows(portal)
    before = rows_before.get(provider, {}).get("proof_of_use_count_24h") or 0
    after = rows_after.get(provider, {}).get("proof_of_use_count_24h") or 0
    check.say(
        f"  $ curl .../api/integrations/status: {provider} proof_of_use_count_24h {before} -> {after}, last_used_at "
        f"{rows_after.get(provider, {}).get('last_used_at')} (the rows the observatory's Connections cards render; "
        "the console page itself needs a staff session, which an API token does not open)"
    )
    if after <= before:
        return check.finish(FAIL, f"{provider}'s proof-of-use count did not increase.")
    failed = sum(1 for e in tick_events if e["status"] != "ok")
    return check.finish(
        PASS,
        f"{len(verify_events)} verify and {len(tick_events)} tick usage event(s) recorded "
        f"(of the tick's, {failed} not ok: see each event's status above).",
    )
