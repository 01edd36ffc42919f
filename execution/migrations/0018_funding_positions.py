"""Funding/basis positions, their funding payments, and the ``basis_pnl`` view over both (issue 18).

``basis_pnl`` is a view and not a table (execution.funding_models says why); ``security_invoker`` makes
the querying role's row-level security on the two tables apply to it, so it needs no policy of its own. Per unit,
``entry_basis = entry_perp_price - entry_spot_price`` (likewise exit); the basis leg's PnL is
``sign x (entry_basis - exit_basis) x quantity`` with ``sign`` +1 for long spot / short perpetual; ``fees`` are the
entry's plus, once closed, the exit's; ``total`` is known only once the position is closed (until then the exit is
unknown, and shown as such rather than as zero).
"""

import django.db.models.deletion

import controlplane.rls
from django.db import migrations, models


BASIS_PNL_VIEW = """
CREATE VIEW basis_pnl WITH (security_invoker = true) AS
SELECT
    p.id AS position_id,
    p.tenant_id,
    p.bot_id,
    p.book,
    i.symbol,
    p.spot_venue,
    p.perp_venue,
    p.direction,
    p.status,
    p.quantity,
    p.entry_perp_price - p.entry_spot_price AS entry_basis,
    p.exit_perp_price - p.exit_spot_price AS exit_basis,
    CASE WHEN p.direction = 'long_spot_short_perp' THEN 1 ELSE -1 END
        * ((p.entry_perp_price - p.entry_spot_price) - (p.exit_perp_price - p.exit_spot_price)) * p.quantity
        AS basis_pnl,
    coalesce(f.received, 0) AS funding_received,
    coalesce(f.payments, 0)::integer AS funding_payments,
    CASE WHEN p.status = 'CLOSED' THEN p.entry_fees + p.exit_fees ELSE p.entry_fees END AS fees,
    CASE WHEN p.direction = 'long_spot_short_perp' THEN 1 ELSE -1 END
        * ((p.entry_perp_price - p.entry_spot_price) - (p.exit_perp_price - p.exit_spot_price)) * p.quantity
        + coalesce(f.received, 0) - (p.entry_fees + p.exit_fees) AS total,
    p.opened_at,
    p.closed_at
FROM execution_fundingposition p
JOIN execution_instrument i ON i.id = p.instrument_id
LEFT JOIN (
    SELECT position_id, sum(amount) AS received, count(*) AS payments
    FROM execution_fundingpayment GROUP BY position_id
) f ON f.position_id = p.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0009_delete_backtestresult"),
        ("controlplane", "0009_heartbeat_kind_quote_collector"),
        ("execution", "0017_arbitrage_spreads_and_pnl"),
    ]

    operations = [
        migrations.CreateModel(
            name="FundingPosition",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "book",
                    models.CharField(
                        choices=[("paper", "Paper (sim venue)"), ("live", "Live (the bot's venue and account)")],
                        max_length=8,
                    ),
                ),
                (
                    "run_ref",
                    models.BigIntegerField(
                        blank=True,
                        help_text="The replay runner whose scans opened it; null on the live timeline.",
                        null=True,
                    ),
                ),
                ("spot_venue", models.CharField(max_length=64)),
                (
                    "perp_venue",
                    models.CharField(help_text="Where the funding is paid (the FundingRate venue).", max_length=64),
                ),
                (
                    "direction",
                    models.CharField(
                        choices=[
                            ("long_spot_short_perp", "Long spot, short perpetual (earns positive funding)"),
                            ("short_spot_long_perp", "Short spot, long perpetual (earns negative funding)"),
                        ],
                        max_length=24,
                    ),
                ),
                ("quantity", models.DecimalField(decimal_places=9, help_text="Base units of each leg.", max_digits=24)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("OPENING", "Entry intent working"),
                            ("OPEN", "Both legs filled; earning funding"),
                            ("CLOSING", "Exit intent working"),
                            ("CLOSED", "Closed"),
                        ],
                        db_index=True,
                        default="OPENING",
                        max_length=8,
                    ),
                ),
                (
                    "expected",
                    models.JSONField(blank=True, default=dict, help_text="The scan's numbers when it opened."),
                ),
                ("entry_spot_price", models.DecimalField(blank=True, decimal_places=9, max_digits=24, null=True)),
                ("entry_perp_price", models.DecimalField(blank=True, decimal_places=9, max_digits=24, null=True)),
                ("entry_fees", models.DecimalField(blank=True, decimal_places=9, max_digits=24, null=True)),
                ("opened_at", models.DateTimeField(blank=True, help_text="When the last entry leg filled.", null=True)),
                ("exit_spot_price", models.DecimalField(blank=True, decimal_places=9, max_digits=24, null=True)),
                ("exit_perp_price", models.DecimalField(blank=True, decimal_places=9, max_digits=24, null=True)),
                ("exit_fees", models.DecimalField(blank=True, decimal_places=9, max_digits=24, null=True)),
                ("closed_at", models.DateTimeField(blank=True, help_text="When the last exit leg filled.", null=True)),
                ("close_reason", models.CharField(blank=True, max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "bot",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="funding_positions", to="bots.bot"
                    ),
                ),
                (
                    "close_intent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="execution.tradeintent",
                    ),
                ),
                (
                    "instrument",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="execution.instrument"
                    ),
                ),
                (
                    "open_intent",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="execution.tradeintent"
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="controlplane.tenant"
                    ),
                ),
            ],
            options={"ordering": ["-id"]},
        ),
        migrations.CreateModel(
            name="BasisPnl",
            fields=[
                (
                    "position",
                    models.OneToOneField(
                        db_column="position_id",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="execution.fundingposition",
                    ),
                ),
                ("book", models.CharField(max_length=8)),
                ("symbol", models.CharField(max_length=64)),
                ("spot_venue", models.CharField(max_length=64)),
                ("perp_venue", models.CharField(max_length=64)),
                ("direction", models.CharField(max_length=24)),
                ("status", models.CharField(max_length=8)),
                ("quantity", models.DecimalField(decimal_places=9, max_digits=24)),
                ("entry_basis", models.DecimalField(decimal_places=9, max_digits=24, null=True)),
                ("exit_basis", models.DecimalField(decimal_places=9, max_digits=24, null=True)),
                ("basis_pnl", models.DecimalField(decimal_places=9, max_digits=24, null=True)),
                ("funding_received", models.DecimalField(decimal_places=9, max_digits=24)),
                ("funding_payments", models.IntegerField()),
                ("fees", models.DecimalField(decimal_places=9, max_digits=24, null=True)),
                ("total", models.DecimalField(decimal_places=9, max_digits=24, null=True)),
                ("opened_at", models.DateTimeField(null=True)),
                ("closed_at", models.DateTimeField(null=True)),
            ],
            options={"db_table": "basis_pnl", "ordering": ["-position_id"], "managed": False},
        ),
        migrations.CreateModel(
            name="FundingPayment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("funding_at", models.DateTimeField()),
                ("rate", models.DecimalField(decimal_places=12, max_digits=20)),
                (
                    "mark",
                    models.DecimalField(
                        decimal_places=10, help_text="The perpetual's mark at funding_at.", max_digits=24
                    ),
                ),
                ("mark_at", models.DateTimeField(help_text="When that mark was received.")),
                ("quantity", models.DecimalField(decimal_places=9, max_digits=24)),
                ("amount", models.DecimalField(decimal_places=9, max_digits=24)),
                ("trace_id", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "position",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="payments",
                        to="execution.fundingposition",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="controlplane.tenant"
                    ),
                ),
            ],
            options={"ordering": ["position", "funding_at"]},
        ),
        migrations.AddIndex(
            model_name="fundingposition",
            index=models.Index(fields=["tenant", "bot", "-id"], name="fundingposition_bot_idx"),
        ),
        migrations.AddConstraint(
            model_name="fundingposition",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["OPENING", "OPEN", "CLOSING"])),
                fields=("bot", "instrument", "book", "run_ref"),
                name="fundingposition_one_active",
                nulls_distinct=False,
            ),
        ),
        migrations.AddConstraint(
            model_name="fundingposition",
            constraint=models.CheckConstraint(
                condition=models.Q(("quantity__gt", 0)), name="fundingposition_quantity_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="fundingpayment",
            constraint=models.UniqueConstraint(fields=("position", "funding_at"), name="fundingpayment_one_per_time"),
        ),
        controlplane.rls.EnableTenantRLS("fundingposition"),
        controlplane.rls.EnableTenantRLS("fundingpayment"),
        migrations.RunSQL(BASIS_PNL_VIEW, "DROP VIEW IF EXISTS basis_pnl"),
    ]
