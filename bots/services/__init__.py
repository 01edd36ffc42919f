"""Every state change of a bot's life: one function each, locking its row, checking the transition is legal and
writing the audit event in the same transaction. Views, admin actions, tasks and commands call these.

Split by domain: bots (create, edit, stages, starter pack), leaving LIVE, kills, reconcile, runners, jobs,
watchdog.
"""

from bots.services.bots import (
    bot_create,
    bot_demote,
    bot_promote,
    bot_set_autonomy_tier,
    bot_update,
    starter_pack_install,
)
from bots.services.jobs import job_cancel, job_create, job_execute, job_retry, reconcile_job_handler
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
from bots.services.reconcile import bot_reconcile, bot_reconcile_resolve
from bots.services.runners import runner_finish_replay, runner_heartbeat, runner_restart, runner_start, runner_stop
from bots.services.watchdog import watchdog_sweep, watchdog_sweep_tenant

__all__ = [
    "PositionsDecision",
    "bot_create",
    "bot_demote",
    "bot_kill",
    "bot_promote",
    "bot_reconcile",
    "bot_reconcile_resolve",
    "bot_unkill",
    "bot_record_live_exit",
    "leave_live",
    "bot_set_autonomy_tier",
    "bot_update",
    "job_cancel",
    "job_create",
    "job_execute",
    "job_retry",
    "reconcile_job_handler",
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
