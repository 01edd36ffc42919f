"""Tick traces partitioned by day of ``bar_ts``, with the functions that create a day ahead and drop a day past.

Why: a month of 1-minute traces for 1,000 bots is 43 million rows; retention by DELETE would rewrite and vacuum
that many rows a month, while dropping a day's partition is one catalogue change. ``bar_ts`` is the key every
read filters on (a window, the latest bar), so a window query touches only the days it covers.

What changes in the database (Django's model state is unchanged except the index, see the model's comment):

- the one-per-bar unique index carries kind, reason and intent (INCLUDE): the runs of a bot's day or window are
  read from that index alone (traces.summaries); the (tenant, bot, -bar_ts) index stays for the latest verdict;
- the primary key becomes ``(id, bar_ts)``: Postgres wants the partition key in every unique index; ``id`` still
  comes from one sequence, so it stays unique, and nothing references this table by foreign key;
- ``traces_ticktrace_default`` takes rows whose day has no partition (backtests and replays over old bars), so no
  insert ever fails for want of a partition; the daily drop never touches it;
- every partition gets the same forced tenant policy as the parent: reads through the parent are bound by the
  parent's policy, and a partition read by name is bound by its own;
- ``traces_ticktrace_ensure_day(date)`` and ``traces_ticktrace_drop_days_before(date)`` are SECURITY DEFINER
  functions owned by the owner role, so the beat task (``traces.maintain_partitions``, which runs as the runtime
  role) can create and drop partitions without the owner's credentials, and can do nothing else with them.

The existing rows are copied into the new table (the old one loses FORCE first: forced RLS binds the owner too,
and the copy would see no rows), then the old table is dropped. Not reversible: going back would be a copy the
other way, which no one needs while the data lives.
"""

from django.db import migrations, models

ENSURE_DAY_SQL = r"""
CREATE OR REPLACE FUNCTION traces_ticktrace_ensure_day(day date) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    part text := 'traces_ticktrace_p' || to_char(day, 'YYYYMMDD');
    lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- Created apart and attached: CREATE TABLE ... PARTITION OF would hold an exclusive lock on the parent (and
    -- so stop the tick's inserts) while ATTACH needs only SHARE UPDATE EXCLUSIVE.
    EXECUTE format('CREATE TABLE %I (LIKE traces_ticktrace INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (bar_ts >= %L AND bar_ts < %L)',
                   part, part || '_range', lo, hi);
    -- A trace for a bar of that day written before the day existed went to the default partition: move it, or
    -- the attach would refuse. The default's policy is lifted for the move only (FORCE binds this owner too).
    ALTER TABLE traces_ticktrace_default NO FORCE ROW LEVEL SECURITY;
    EXECUTE format('WITH moved AS (DELETE FROM traces_ticktrace_default WHERE bar_ts >= %L AND bar_ts < %L '
                   'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
    ALTER TABLE traces_ticktrace_default FORCE ROW LEVEL SECURITY;
    EXECUTE format('ALTER TABLE traces_ticktrace ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', part);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = current_tenant_id()) '
                   'WITH CHECK (tenant_id = current_tenant_id())', part);
    RETURN true;
END $$;
"""

DROP_DAYS_SQL = r"""
CREATE OR REPLACE FUNCTION traces_ticktrace_drop_days_before(cutoff date)
    RETURNS TABLE (partition_name text, day date, estimated_rows bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    child record;
BEGIN
    IF cutoff > current_date THEN
        RAISE EXCEPTION 'refusing to drop trace partitions of today or later (cutoff %)', cutoff;
    END IF;
    FOR child IN
        SELECT c.relname::text AS name, to_date(substr(c.relname, 19), 'YYYYMMDD') AS d,
               greatest(c.reltuples, 0)::bigint AS estimate
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'traces_ticktrace'::regclass AND c.relname ~ '^traces_ticktrace_p[0-9]{8}$'
        ORDER BY 2
    LOOP
        CONTINUE WHEN child.d >= cutoff;
        EXECUTE format('DROP TABLE %I', child.name);
        partition_name := child.name;
        day := child.d;
        estimated_rows := child.estimate;
        RETURN NEXT;
    END LOOP;
END $$;
"""

CONVERT_SQL = (
    r"""
LOCK TABLE traces_ticktrace IN ACCESS EXCLUSIVE MODE;
ALTER TABLE traces_ticktrace RENAME TO traces_ticktrace_unpartitioned;
ALTER TABLE traces_ticktrace_unpartitioned NO FORCE ROW LEVEL SECURITY;
ALTER TABLE traces_ticktrace_unpartitioned RENAME CONSTRAINT ticktrace_one_per_bot_instrument_bar TO ticktrace_old_unique;
ALTER TABLE traces_ticktrace_unpartitioned RENAME CONSTRAINT ticktrace_reason_only_for_no_trade TO ticktrace_old_reason;
ALTER TABLE traces_ticktrace_unpartitioned DROP CONSTRAINT traces_ticktrace_tenant_id_6717f21a_fk_controlplane_tenant_id;
DROP INDEX ticktrace_bot_latest_idx;
ALTER TABLE traces_ticktrace_unpartitioned RENAME CONSTRAINT traces_ticktrace_pkey TO ticktrace_old_pkey;
ALTER TABLE traces_ticktrace_unpartitioned ALTER COLUMN id DROP IDENTITY;

CREATE SEQUENCE traces_ticktrace_id_seq;
CREATE TABLE traces_ticktrace (
    id bigint NOT NULL DEFAULT nextval('traces_ticktrace_id_seq'),
    kind varchar(16) NOT NULL,
    context varchar(16) NOT NULL,
    run_ref bigint NULL,
    bot_id bigint NULL,
    instrument varchar(64) NOT NULL,
    timeframe varchar(8) NOT NULL,
    bar_ts timestamptz NOT NULL,
    reason_code varchar(32) NULL,
    details jsonb NOT NULL,
    inputs jsonb NOT NULL,
    signal jsonb NOT NULL,
    risk_checks jsonb NOT NULL,
    intent_id bigint NULL,
    trace_id varchar(64) NOT NULL,
    created_at timestamptz NOT NULL,
    tenant_id bigint NOT NULL,
    CONSTRAINT traces_ticktrace_pkey PRIMARY KEY (id, bar_ts),
    CONSTRAINT ticktrace_one_per_bot_instrument_bar
        UNIQUE NULLS NOT DISTINCT (tenant_id, bot_id, instrument, bar_ts, context, run_ref)
        INCLUDE (kind, reason_code, intent_id),
    CONSTRAINT ticktrace_reason_only_for_no_trade CHECK (
        (kind = 'decision' AND reason_code IS NULL) OR (kind = 'no_trade' AND reason_code IS NOT NULL)),
    CONSTRAINT traces_ticktrace_tenant_id_6717f21a_fk_controlplane_tenant_id
        FOREIGN KEY (tenant_id) REFERENCES controlplane_tenant (id) DEFERRABLE INITIALLY DEFERRED
) PARTITION BY RANGE (bar_ts);
ALTER SEQUENCE traces_ticktrace_id_seq OWNED BY traces_ticktrace.id;
CREATE INDEX ticktrace_bot_latest_idx ON traces_ticktrace (tenant_id, bot_id, bar_ts DESC);

CREATE TABLE traces_ticktrace_default PARTITION OF traces_ticktrace DEFAULT;
ALTER TABLE traces_ticktrace_default ENABLE ROW LEVEL SECURITY;
ALTER TABLE traces_ticktrace_default FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON traces_ticktrace_default
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
"""
    + ENSURE_DAY_SQL
    + DROP_DAYS_SQL
    + r"""
-- The last 35 days and the next 7 exist from the start; older rows land in the default partition.
SELECT traces_ticktrace_ensure_day(d::date)
FROM generate_series(current_date - 35, current_date + 7, interval '1 day') AS d;

INSERT INTO traces_ticktrace (id, kind, context, run_ref, bot_id, instrument, timeframe, bar_ts, reason_code,
                              details, inputs, signal, risk_checks, intent_id, trace_id, created_at, tenant_id)
SELECT id, kind, context, run_ref, bot_id, instrument, timeframe, bar_ts, reason_code,
       details, inputs, signal, risk_checks, intent_id, trace_id, created_at, tenant_id
FROM traces_ticktrace_unpartitioned;
SELECT setval('traces_ticktrace_id_seq', coalesce((SELECT max(id) FROM traces_ticktrace), 0) + 1, false);
DROP TABLE traces_ticktrace_unpartitioned;

ALTER TABLE traces_ticktrace ENABLE ROW LEVEL SECURITY;
ALTER TABLE traces_ticktrace FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON traces_ticktrace
    USING (tenant_id = current_tenant_id()) WITH CHECK (tenant_id = current_tenant_id());
"""
)


class Migration(migrations.Migration):
    dependencies = [
        ("controlplane", "0002_tenant_rls_and_append_only_audit"),
        ("traces", "0008_autonomy_not_allowed_reason"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CONVERT_SQL)],
            state_operations=[
                migrations.RemoveConstraint(model_name="ticktrace", name="ticktrace_one_per_bot_instrument_bar"),
                migrations.AddConstraint(
                    model_name="ticktrace",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "bot_id", "instrument", "bar_ts", "context", "run_ref"),
                        include=("kind", "reason_code", "intent_id"),
                        name="ticktrace_one_per_bot_instrument_bar",
                        nulls_distinct=False,
                    ),
                ),
            ],
        )
    ]
