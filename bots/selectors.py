"""Reads several callers share: kill state, what blocks a bot from trading, unkill's reconcile rule, active runners,
an unresolved exit from LIVE."""

from __future__ import annotations

from django.db import connection

from bots.models import Bot, CancelRequest, GlobalKillSwitch, Reconciliation, Runner, TenantKillSwitch
from bots.routing import order_book, order_venue
from bots.trading_rule import kill_block_reason, trading_block_reason
from controlplane import tenancy
from controlplane.errors import ControlPlaneError, ErrorCode


def system_killed() -> bool:
    return GlobalKillSwitch.objects.filter(pk=GlobalKillSwitch.SINGLETON_ID, killed=True).exists()


def tenant_killed() -> bool:
    """The kill switch of the tenant in context."""
    return TenantKillSwitch.objects.filter(killed=True).exists()


def kill_switches() -> tuple[bool, bool]:
    """(:func:`system_killed`, :func:`tenant_killed`) in one statement: the same two queries, each an ``EXISTS``
    of one ``SELECT`` (a batch's checks read them under the tenant's check lock, where a round trip counts)."""
    system = GlobalKillSwitch.objects.filter(pk=GlobalKillSwitch.SINGLETON_ID, killed=True).values("pk")
    tenant = TenantKillSwitch.objects.filter(killed=True).values("pk")
    (system_sql, system_params), (tenant_sql, tenant_params) = (
        system.query.sql_with_params(),
        tenant.query.sql_with_params(),
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS({system_sql}), EXISTS({tenant_sql})", [*system_params, *tenant_params])
        killed_system, killed_tenant = cursor.fetchone()
    return bool(killed_system), bool(killed_tenant)


def _block_error(code: ErrorCode, bot: Bot) -> ControlPlaneError:
    if code == ErrorCode.BOT_KILLED:
        return ControlPlaneError(
            ErrorCode.BOT_KILLED,
            f"Bot {bot.name} is killed: {bot.kill_reason}",
            details={"bot_id": bot.id, "killed_at": bot.killed_at.isoformat() if bot.killed_at else None},
        )
    if code == ErrorCode.RECONCILE_MISMATCH:
        return ControlPlaneError(ErrorCode.RECONCILE_MISMATCH, details={"bot_id": bot.id})
    return ControlPlaneError(code)


def kill_block(bot: Bot) -> ControlPlaneError | None:
    """The kill that stops this bot, most global first, or None (the trading rule's kills alone)."""
    code = kill_block_reason(system_killed=system_killed(), tenant_killed=tenant_killed(), bot_killed=bot.killed)
    return None if code is None else _block_error(code, bot)


def trading_block(bot: Bot) -> ControlPlaneError | None:
    """Why this bot may not send orders now (retirement, kill switches, an unresolved reconcile mismatch), or
    None: the facts of one bot read for the trading rule. Safe-start, the intent submit and the OMS read this
    before every order; the tick reads the same facts in bulk and asks the same rule."""
    code = trading_block_reason(
        system_killed=system_killed(),
        tenant_killed=tenant_killed(),
        bot_killed=bot.killed,
        stage=bot.stage,
        reconcile_mismatch=bot.reconcile_mismatch,
    )
    return None if code is None else _block_error(code, bot)


def trading_blocks(bots) -> dict[int, ControlPlaneError | None]:
    """:func:`trading_block` of many bots of the tenant in context, the kill switches read once: a batch of
    intents submitted together is checked against one reading of them, as one intent is."""
    system, tenant = kill_switches()
    blocks = {}
    for bot in bots:
        code = trading_block_reason(
            system_killed=system,
            tenant_killed=tenant,
            bot_killed=bot.killed,
            stage=bot.stage,
            reconcile_mismatch=bot.reconcile_mismatch,
        )
        blocks[bot.id] = None if code is None else _block_error(code, bot)
    return blocks


def flat_reconciliation_since_kill(bot: Bot) -> Reconciliation | None:
    """Unkill's reconcile rule: the latest MATCHED reconciliation of the book the bot trades in (its live book
    once LIVE) made since the bot was killed, in which both our book and the venue held nothing; or None (then
    releasing the bot needs the operator's positions decision). A flat paper reconcile says nothing about a LIVE
    bot's venue."""
    if bot.killed_at is None:
        return None
    return (
        Reconciliation.objects.filter(
            bot=bot,
            book=order_book(bot),
            created_at__gte=bot.killed_at,
            status=Reconciliation.Status.MATCHED,
            is_flat=True,
        )
        .order_by("-id")
        .first()
    )


def active_runner(bot_id: int) -> Runner | None:
    return Runner.objects.filter(bot_id=bot_id, status__in=Runner.ACTIVE_STATUSES).first()


def providers_in_use(tenant_id: int) -> set[str]:
    """The providers the tenant's bots need (the Keys Needed checklist's "enabled capabilities"): the data source of
    every bot that is not retired, and the venue of every LIVE bot (other stages trade on the sim venue); sim and
    imported need no key."""
    with tenancy.tenant_context(tenant_id):
        bots = list(Bot.objects.exclude(stage="RETIRED").only("venue", "data_source", "stage"))
    used = {bot.data_source for bot in bots}
    used |= {order_venue(bot) for bot in bots}
    return used - {"sim", "imported"}


def unresolved_live_exit(bot: Bot) -> tuple[str, Reconciliation | CancelRequest] | None:
    """Why ``bot`` may not go LIVE again because of how it last left LIVE, or None. ``("pending", request)``: the
    exit's cancels and venue read have not been recorded yet; ``("unmanaged", report)``: the venue still held
    something and nobody resolved it."""
    pending = (
        CancelRequest.objects.filter(
            bot=bot, purpose=CancelRequest.Purpose.LEAVE_LIVE, status=CancelRequest.Status.PENDING
        )
        .order_by("-id")
        .first()
    )
    if pending is not None:
        return "pending", pending
    report = (
        Reconciliation.objects.filter(
            bot=bot, purpose=Reconciliation.Purpose.LIVE_EXIT, status=Reconciliation.Status.MISMATCH, resolution=""
        )
        .order_by("-id")
        .first()
    )
    if report is not None:
        return "unmanaged", report
    return None
