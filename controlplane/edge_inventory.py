"""Read an operator's old Supabase tree and say, from its code, which edge functions are still dangerous.

The master spec's PHASE 1 wants the inventory "from the repo, not memory": a function is classified by what its
code (its entry file and every file it imports, ``_shared/`` included) touches, never by its name, and every
verdict carries the file and line that earned it. ``manage.py edge_inventory`` is the command around this module.

This is a reader of TypeScript built from regular expressions over the source with comments blanked out, not a
parser; its limits, on purpose:

- a table is recognised only as a literal: ``.from('orders')`` counts, ``.from(tableName)`` does not;
- a write is an ``insert``/``update``/``upsert``/``delete`` in the chain that follows ``.from('x')``; a stage or
  kill change is recognised by the word ``stage`` or ``kill`` in that write's arguments;
- ``.rpc('name')`` is a write (a stored procedure is assumed to change state), critical when its name says so;
- a broker call is a ``fetch`` whose URL, or a same-file constant the URL starts with, names a venue host;
- an import pulls in the whole imported file: everything a ``_shared`` helper touches is charged to each function
  that imports it, whether or not the function calls that helper;
- template literals are read as plain strings; a backtick inside ``${...}`` confuses the comment blanker;
- a dynamic ``functions.invoke(name)`` cannot be attributed to a function; it is reported as such, and it makes
  the command fail, because nobody can say it is harmless.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from controlplane import edge_functions

EXECUTION_CRITICAL = "EXECUTION CRITICAL"
STATE_MUTATING = "STATE MUTATING"
SIDE_EFFECT_ONLY = "SIDE EFFECT ONLY"
UNUSED = "UNUSED"
CLASSES = (EXECUTION_CRITICAL, STATE_MUTATING, SIDE_EFFECT_ONLY)
DANGEROUS = (EXECUTION_CRITICAL, STATE_MUTATING)

ENTRY_FILES = ("index.ts", "index.tsx", "index.js", "index.mjs")
SOURCE_SUFFIXES = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs")
EDGE_CALL_KINDS = ("invoke", "functions-host", "functions-path")
SKIPPED_CLIENT_DIRS = {"node_modules", ".git", "dist", "build", ".next", "coverage"}

# Words in a table or procedure name that mean the predecessor's execution path: orders, fills, positions, runner
# and job lifecycle, stages, kill state, risk, backtests and the lab (the spec's EXECUTION CRITICAL list).
CRITICAL_WORDS = {
    "order", "orders", "fill", "fills", "position", "positions", "trade", "trades", "execution", "executions",
    "intent", "intents", "runner", "runners", "job", "jobs", "stage", "stages", "kill", "kills", "killswitch",
    "risk", "backtest", "backtests", "lab", "promotion", "promotions", "heartbeat", "heartbeats",
}  # fmt: skip
CRITICAL_RPC_VERBS = {"execute", "promote", "demote", "start", "stop", "restart", "tick", "reconcile", "kill"}
VENUE_HOSTS = (
    "kraken.com", "coinbase.com", "binance.us", "binance.com", "hyperliquid.xyz", "tradovateapi.com",
    "tradovate.com", "ironbeam.com", "alpaca.markets", "bybit.com", "okx.com", "deribit.com", "oanda.com",
)  # fmt: skip
NOTIFICATION_HOSTS = (
    "api.twilio.com", "api.resend.com", "api.sendgrid.com", "hooks.slack.com", "api.telegram.org",
    "discord.com/api/webhooks",
)  # fmt: skip

# The spec's starting point, printed beside the counts so an operator can compare their tree with it.
AUDIT_REFERENCE = (
    "The audit this replaces counted 99 functions: 27 EXECUTION CRITICAL, 21 STATE MUTATING, 41 SIDE EFFECT ONLY."
)

_FROM = re.compile(r"\.from\(\s*(['\"`])([\w.\-]+)\1\s*\)")
_CHAIN_CALL = re.compile(r"\s*\.\s*(\w+)\s*\(")
_RPC = re.compile(r"\.rpc\(\s*(['\"`])([\w.\-]+)\1")
_FETCH = re.compile(r"\bfetch\(\s*")
_CONST = re.compile(r"\b(?:const|let|var)\s+(\w+)\s*=\s*(['\"`])([^'\"`\n]*)\2")
_IMPORT = re.compile(
    r"\b(?:import|export)\b[^;'\"`]*?\bfrom\s*(['\"])(\.{1,2}/[^'\"]+)\1|\bimport\s*(['\"])(\.{1,2}/[^'\"]+)\3"
)
_INVOKE = re.compile(r"\.functions\s*\.\s*invoke\(\s*(?:(['\"`])([\w\-]+)\1)?")
_FUNCTIONS_HOST = re.compile(r"functions\.supabase\.co/([\w\-]+)")
_FUNCTIONS_PATH = re.compile(r"/functions/v1/([\w\-]+)")
_CREATE_CLIENT = re.compile(r"\bcreateClient\s*\(")
_AUTH = re.compile(r"\.auth\s*\.\s*(\w+)\s*\(")
_WRITE_VERBS = {"insert", "update", "upsert", "delete"}


class InventoryError(Exception):
    """Bad input: the command reports it and writes nothing."""


@dataclass(frozen=True)
class Evidence:
    kind: str  # table-write, table-read, rpc, broker-call, notification, http-call
    detail: str
    file: str
    line: int
    critical: bool = False
    mutating: bool = False

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class CallSite:
    file: str
    line: int
    kind: str  # invoke, functions-host, functions-path, create-client, auth
    target: str  # the function's name, "?" for a dynamic invoke, the auth method, or "createClient"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class EdgeFunction:
    name: str
    entry: str
    files: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    invokes: list[CallSite] = field(default_factory=list)
    invoked_by: list[str] = field(default_factory=list)  # "client file:line", "cron file:line", "function x"
    unused: bool | None = None  # None: no client sources were given, so nobody can say

    @property
    def classification(self) -> str:
        if any(e.critical for e in self.evidence):
            return EXECUTION_CRITICAL
        if any(e.mutating for e in self.evidence):
            return STATE_MUTATING
        return SIDE_EFFECT_ONLY

    @property
    def invoked_from_client(self) -> bool:
        return any(src.startswith("client ") for src in self.invoked_by)

    def decision(self) -> edge_functions.EdgeDecision:
        return edge_functions.decision_for(self.name) or edge_functions.decision_for_unlisted(
            self.name, unused=bool(self.unused)
        )


@dataclass
class Inventory:
    root: str
    functions: list[EdgeFunction]
    call_sites: list[CallSite]
    client_src: list[str]

    def counts(self) -> dict[str, int]:
        counts = {cls: sum(1 for f in self.functions if f.classification == cls) for cls in CLASSES}
        counts[UNUSED] = sum(1 for f in self.functions if f.unused)
        return counts

    def still_invoked(self) -> list[EdgeFunction]:
        """Execution critical or state mutating functions the client sources still call: the CI failure."""
        return [f for f in self.functions if f.classification in DANGEROUS and f.invoked_from_client]

    def calls_outside_the_tree(self) -> list[CallSite]:
        """Client calls naming a function this tree does not hold: its code cannot be read, so it is listed
        without a class (the portal answers such a name 410 anyway)."""
        names = {f.name for f in self.functions}
        return [c for c in self.call_sites if c.kind in EDGE_CALL_KINDS and c.target not in names | {"?"}]

    def dynamic_invokes(self) -> list[CallSite]:
        return [c for c in self.call_sites if c.target == "?"]

    @property
    def clean(self) -> bool:
        return not self.still_invoked() and not self.dynamic_invokes()


# Reading TypeScript --------------------------------------------------------------------------------------------


def blank_comments(text: str) -> str:
    """The source with ``//`` and ``/* */`` comments replaced by spaces (newlines kept, so line numbers hold);
    strings are walked so that ``'https://...'`` is not mistaken for a comment."""
    out = list(text)
    i, n, quote = 0, len(text), None
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
            i += 1
            continue
        if ch in "'\"`":
            quote = ch
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            i = end
            continue
        i += 1
    return "".join(out)


def _skip_parens(text: str, open_at: int) -> int:
    """Index just past the parenthesis that closes the one at ``open_at`` (strings skipped)."""
    depth, i, quote = 0, open_at, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _words(name: str) -> set[str]:
    return set(re.split(r"[_\-.]+", name.lower()))


def read_source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"Cannot read {path}: {exc}") from exc


def table_evidence(text: str, file: str) -> list[Evidence]:
    found = []
    for match in _FROM.finditer(text):
        table, pos, write = match.group(2), match.end(), None
        while (call := _CHAIN_CALL.match(text, pos)) is not None:
            close = _skip_parens(text, call.end() - 1)
            if call.group(1) in _WRITE_VERBS and write is None:
                write = (call.group(1), call.start(1), text[call.end() : close - 1])
            pos = close
        if write is None:
            found.append(Evidence("table-read", f"reads {table}", file, _line(text, match.start())))
            continue
        verb, at, args = write
        payload_words = _words(" ".join(re.findall(r"\w+", args)))
        critical_table = bool(_words(table) & CRITICAL_WORDS)
        stage_or_kill = bool(payload_words & {"stage", "kill", "killed", "is_killed", "kill_state"})
        why = "" if critical_table or not stage_or_kill else " (stage or kill state)"
        found.append(
            Evidence(
                "table-write",
                f"{verb} {table}{why}",
                file,
                _line(text, at),
                critical=critical_table or stage_or_kill,
                mutating=True,
            )
        )
    for match in _RPC.finditer(text):
        name = match.group(2)
        critical = bool(_words(name) & (CRITICAL_WORDS | CRITICAL_RPC_VERBS))
        found.append(Evidence("rpc", f"rpc {name}", file, _line(text, match.start()), critical, mutating=True))
    return found


def http_evidence(text: str, file: str) -> list[Evidence]:
    constants = {m.group(1): m.group(3) for m in _CONST.finditer(text)}
    found = []
    for match in _FETCH.finditer(text):
        close = _skip_parens(text, match.end() - 1)
        argument = text[match.end() : close - 1].split(",", 1)[0].strip()
        target = argument.strip("'\"`")
        for name, value in constants.items():
            if target.startswith((name, "${" + name + "}")):
                target = value + target[len(name) + (3 if target.startswith("${") else 0) :]
                break
        line = _line(text, match.start())
        shown = target if len(target) <= 80 else target[:77] + "..."
        if any(host in target for host in VENUE_HOSTS):
            found.append(Evidence("broker-call", f"fetch {shown}", file, line, critical=True, mutating=True))
        elif any(host in target for host in NOTIFICATION_HOSTS):
            found.append(Evidence("notification", f"fetch {shown}", file, line))
        elif not _FUNCTIONS_PATH.search(target) and not _FUNCTIONS_HOST.search(target):
            found.append(Evidence("http-call", f"fetch {shown}", file, line))
    return found


def call_sites(text: str, file: str, *, with_auth: bool) -> list[CallSite]:
    sites = []
    for match in _INVOKE.finditer(text):
        sites.append(CallSite(file, _line(text, match.start()), "invoke", match.group(2) or "?"))
    for pattern, kind in ((_FUNCTIONS_HOST, "functions-host"), (_FUNCTIONS_PATH, "functions-path")):
        for match in pattern.finditer(text):
            sites.append(CallSite(file, _line(text, match.start()), kind, match.group(1)))
    if with_auth:
        for match in _CREATE_CLIENT.finditer(text):
            sites.append(CallSite(file, _line(text, match.start()), "create-client", "createClient"))
        for match in _AUTH.finditer(text):
            sites.append(CallSite(file, _line(text, match.start()), "auth", f"auth.{match.group(1)}"))
    # functions.supabase.co/x inside a /functions/v1/ URL, or both patterns on one URL: one call site per place.
    unique = {(s.file, s.line, s.target): s for s in sorted(sites, key=lambda s: s.kind != "invoke")}
    return sorted(unique.values(), key=lambda s: (s.file, s.line, s.target))


def _resolve_import(importer: Path, spec: str) -> Path | None:
    base = (importer.parent / spec).resolve()
    for candidate in (base, base.with_name(base.name + ".ts"), base / "index.ts"):
        if candidate.is_file():
            return candidate
    return None


# Walking the tree ------------------------------------------------------------------------------------------------


def _functions_dir(root: Path) -> Path:
    if not root.exists():
        raise InventoryError(f"{root} does not exist.")
    functions_dir = root / "supabase" / "functions"
    if not functions_dir.is_dir():
        raise InventoryError(f"{root} has no supabase/functions folder: give the root of the old Supabase project.")
    return functions_dir


def _scan_function(folder: Path, root: Path) -> EdgeFunction:
    entry = next((folder / name for name in ENTRY_FILES if (folder / name).is_file()), None)
    if entry is None:
        raise InventoryError(f"{folder} has no entry file (one of {', '.join(ENTRY_FILES)}).")
    function = EdgeFunction(name=folder.name, entry=str(entry.relative_to(root)))
    queue, seen = [entry.resolve()], set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        shown = str(path.relative_to(root.resolve()))
        function.files.append(shown)
        text = blank_comments(read_source(path))
        function.evidence += table_evidence(text, shown) + http_evidence(text, shown)
        function.invokes += [c for c in call_sites(text, shown, with_auth=False) if c.target != folder.name]
        for match in _IMPORT.finditer(text):
            spec = match.group(2) or match.group(4)
            target = _resolve_import(path, spec)
            if target is None:
                raise InventoryError(f"{shown}:{_line(text, match.start())} imports {spec}, which does not exist.")
            if root.resolve() not in target.parents:
                raise InventoryError(f"{shown} imports {spec}, outside {root}.")
            queue.append(target)
    function.evidence.sort(key=lambda e: (e.file != function.entry, e.file, e.line))
    return function


def client_files(directory: Path):
    """The client's source files under ``directory``, vendored and built folders left out."""
    for path in sorted(directory.rglob("*")):
        if path.suffix in SOURCE_SUFFIXES and path.is_file():
            if not SKIPPED_CLIENT_DIRS & set(path.relative_to(directory).parts):
                yield path


def build_inventory(root: str | Path, client_src: list[str | Path] | None = None) -> Inventory:
    """Scan ``root``/supabase/functions and the client sources; raise InventoryError on bad input."""
    root = Path(root)
    functions_dir = _functions_dir(root)
    directories = [Path(d) for d in client_src or []]
    for directory in directories:
        if not directory.is_dir():
            raise InventoryError(f"--client-src {directory} is not a directory.")
    folders = sorted(p for p in functions_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    functions = {folder.name: _scan_function(folder, root) for folder in folders}

    sites: list[CallSite] = []
    for directory in directories:
        for path in client_files(directory):
            shown = str(Path(str(directory)) / path.relative_to(directory))
            sites += call_sites(blank_comments(read_source(path)), shown, with_auth=True)
    for site in sites:
        if site.target in functions:
            functions[site.target].invoked_by.append(f"client {site.where}")
    for function in functions.values():
        for site in function.invokes:
            if site.target in functions:
                functions[site.target].invoked_by.append(f"function {function.name} ({site.where})")
    migrations = root / "supabase" / "migrations"
    if migrations.is_dir():
        for path in sorted(migrations.glob("*.sql")):
            text = read_source(path)
            for match in _FUNCTIONS_PATH.finditer(text):
                if match.group(1) in functions:
                    where = f"{path.relative_to(root)}:{_line(text, match.start())}"
                    functions[match.group(1)].invoked_by.append(f"cron {where}")
    for function in functions.values():
        function.unused = not function.invoked_by if directories else None
    return Inventory(str(root), list(functions.values()), sites, [str(d) for d in directories])


# Rendering -------------------------------------------------------------------------------------------------------


def _unused_text(function: EdgeFunction) -> str:
    return {True: "UNUSED", False: "used", None: "unknown (no --client-src)"}[function.unused]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(inventory: Inventory) -> str:
    counts = inventory.counts()
    lines = [
        f"# Edge function inventory of {inventory.root}/supabase/functions",
        "",
        f"{len(inventory.functions)} functions; client sources: "
        + (", ".join(inventory.client_src) if inventory.client_src else "none given (UNUSED cannot be told)"),
        "",
        "## Summary",
        "",
        "| class | functions |",
        "|---|---|",
        *(f"| {cls} | {counts[cls]} |" for cls in CLASSES),
        f"| {UNUSED} (also counted in its class) | {counts[UNUSED] if inventory.client_src else 'unknown'} |",
        "",
        AUDIT_REFERENCE,
        "",
    ]
    still = inventory.still_invoked()
    if still:
        lines.append("Still invoked from client sources (EXECUTION CRITICAL or STATE MUTATING):")
        lines += [f"- {f.name} ({f.classification}): {', '.join(f.invoked_by)}" for f in still]
    for site in inventory.dynamic_invokes():
        lines.append(f"- a dynamic functions.invoke at {site.where}: which function it calls cannot be told")
    if inventory.clean:
        lines.append("No EXECUTION CRITICAL or STATE MUTATING function is invoked from the client sources.")
    outside = inventory.calls_outside_the_tree()
    if outside:
        lines.append("Client calls to functions this tree does not hold (no code to classify):")
        lines += [f"- {site.target} at {site.where}" for site in outside]
    lines += ["", "## Functions", "", "| function | class | use | invoked by | evidence |", "|---|---|---|---|---|"]
    for f in inventory.functions:
        evidence = "; ".join(f"{e.detail} ({e.where})" for e in f.evidence) or f"no table access or call ({f.entry})"
        lines.append(
            f"| {f.name} | {f.classification} | {_unused_text(f)} | {_cell('; '.join(f.invoked_by)) or '-'} "
            f"| {_cell(evidence)} |"
        )
    lines += ["", "## Client call sites", "", "| where | kind | target |", "|---|---|---|"]
    lines += [f"| {s.where} | {s.kind} | {s.target} |" for s in inventory.call_sites] or ["| - | none found | - |"]
    lines += ["", "## Decision table", "", "| function | decision | replacement | from |", "|---|---|---|---|"]
    for f in inventory.functions:
        row = f.decision()
        source = "decision table" if row.known else "not in the table"
        lines.append(f"| {f.name} | {row.decision} | {_cell(row.replacement)} | {source} |")
    return "\n".join(lines) + "\n"


def as_dict(inventory: Inventory) -> dict:
    return {
        "root": inventory.root,
        "client_src": inventory.client_src,
        "summary": inventory.counts() | {"functions": len(inventory.functions)},
        "audit_reference": AUDIT_REFERENCE,
        "clean": inventory.clean,
        "still_invoked": [f.name for f in inventory.still_invoked()],
        "dynamic_invokes": [s.where for s in inventory.dynamic_invokes()],
        "calls_outside_the_tree": [{"target": s.target, "where": s.where} for s in inventory.calls_outside_the_tree()],
        "functions": [
            {
                "name": f.name,
                "class": f.classification,
                "unused": f.unused,
                "entry": f.entry,
                "files": f.files,
                "invoked_by": f.invoked_by,
                "evidence": [
                    {"kind": e.kind, "detail": e.detail, "file": e.file, "line": e.line, "critical": e.critical}
                    for e in f.evidence
                ],
                "decision": {
                    "decision": str(f.decision().decision),
                    "replacement": f.decision().replacement,
                    "in_table": f.decision().known,
                },
            }
            for f in inventory.functions
        ],
        "call_sites": [
            {"file": s.file, "line": s.line, "kind": s.kind, "target": s.target} for s in inventory.call_sites
        ],
    }


def render_json(inventory: Inventory) -> str:
    return json.dumps(as_dict(inventory), indent=2) + "\n"
