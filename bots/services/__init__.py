"""Every state change of a bot's life: one function each, locking its row, checking the transition is legal and
writing the audit event in the same transaction. Views, admin actions, tasks and commands call these.

Split by domain: bots (create, edit, demote, starter pack), leaving LIVE, kills, runners, jobs, watchdog.
Promotion and reconcile judge a bot and live on top (oversight).
"""

from bots.services.bots import bot_create, bot_demote, bot_set_autonomy_tier, bot_update, starter_pack_install
from bots.services.jobs import job_cancel, job_create, job_execute, job_retry
from bots.services.kills import (
    PositionsDecision,
    bot_kill,
    bot_unkill,
    system_kill,
    system_unkill,
    tenant_kill,
    tenant_unkill,
)
from bots.services.leaving import bot_record_live_exit, leave_live
from bots.services.runners import runner_finish_replay, runner_heartbeat, runner_restart, runner_start, runner_stop
from bots.services.watchdog import watchdog_sweep, watchdog_sweep_tenant

__all__ = [
    "PositionsDecision",
    "bot_create",
    "bot_demote",
    "bot_kill",
    "bot_unkill",
    "bot_record_live_exit",
    "leave_live",
    "bot_set_autonomy_tier",
    "bot_update",
    "job_cancel",
    "job_create",
    "job_execute",
    "job_retry",
    "runner_finish_replay",
    "runner_heartbeat",
    "runner_restart",
    "runner_start",
    "runner_stop",
    "starter_pack_install",
    "system_kill",
    "system_unkill",
    "tenant_kill",
    "tenant_unkill",
    "watchdog_sweep",
    "watchdog_sweep_tenant",
]
