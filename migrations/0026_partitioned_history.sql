-- Partitioned history: the append-only tables that grow with traffic (usage events, ledger
-- entries, webhook attempts, audit events) become range-partitioned by calendar month (UTC) of
-- their time column, so retention drops whole months instead of deleting rows. Existing rows
-- move in this migration. Each table gets a DEFAULT partition for rows outside the months
-- made so far (an account on a test clock years ahead); billing_history_partition() moves
-- them out when their month is made. The workers make months ahead and drop expired ones
-- (src/db/history.ts).

-- Append-only still, except for moving rows out of a DEFAULT partition into their month.
CREATE OR REPLACE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME LIKE '%\_default' AND current_setting('billing.moving_history', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
END $$;
--> statement-breakpoint
-- The month partition of `parent` holding `at` (UTC months), made if missing: created beside
-- the table, filled with the DEFAULT partition's rows of that month, then attached. ATTACH
-- takes a lighter lock on the parent than CREATE ... PARTITION OF, but an exclusive one on
-- the DEFAULT partition. When DEFAULT holds rows of the month, the parent is locked
-- exclusively first: a query planned before the move must not read DEFAULT after it (it would
-- miss the moved rows, and the committer would take a known event id for a new one).
-- Idempotent; one caller at a time per table.
CREATE FUNCTION billing_history_partition(parent text, at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  lower_bound timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  upper_bound timestamptz := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
  part text := parent || '_p' || to_char(at AT TIME ZONE 'UTC', 'YYYY_MM');
  col text;
  has_rows boolean := false;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('billing_history_partition'), hashtext(parent));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN part;
  END IF;
  SELECT a.attname INTO STRICT col
    FROM pg_partitioned_table pt JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
    WHERE pt.partrelid = parent::regclass;
  EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
  IF to_regclass(parent || '_default') IS NOT NULL THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)', parent || '_default', col, col) INTO has_rows USING lower_bound, upper_bound;
  END IF;
  IF has_rows THEN
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent);
    PERFORM set_config('billing.moving_history', 'on', true);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
      parent || '_default', col, col, part) USING lower_bound, upper_bound;
    PERFORM set_config('billing.moving_history', 'off', true);
  END IF;
  -- Bounds as UTC text: %L of a timestamptz follows the session's DateStyle and TimeZone.
  EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part,
    to_char(lower_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', to_char(upper_bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00');
  RETURN part;
END $$;
--> statement-breakpoint
-- A non-usage source key (payment:, adjustment:, credit_note:, refund) stays unique across the
-- months kept: every ledger write holds its account's balance row, so the check cannot race
-- within an account (an adjustment key names the ops key, and its idempotency record keeps two
-- accounts apart). Usage entries are unique through usage_events, looked up in every month
-- under the same lock.
CREATE FUNCTION credit_ledger_source_key_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM credit_ledger WHERE source_key = NEW.source_key) THEN
    RAISE EXCEPTION 'duplicate key value violates unique constraint "credit_ledger_source_key_month"'
      USING ERRCODE = '23505', CONSTRAINT = 'credit_ledger_source_key_month', DETAIL = format('Key (source_key)=(%s) already exists.', NEW.source_key);
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TABLE "credit_ledger_carried" (
	"account_id" text PRIMARY KEY NOT NULL,
	"through" timestamp with time zone NOT NULL,
	"amount" bigint NOT NULL,
	"entries" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "credit_ledger_carried" ADD CONSTRAINT "credit_ledger_carried_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
-- usage_events
ALTER TABLE "usage_events" RENAME TO "usage_events_unpartitioned";--> statement-breakpoint
ALTER TABLE "usage_events_unpartitioned" DROP CONSTRAINT "usage_events_account_id_id_pk";--> statement-breakpoint
DROP INDEX "usage_events_account_idx";--> statement-breakpoint
CREATE TABLE "usage_events" (LIKE "usage_events_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");--> statement-breakpoint
ALTER TABLE "usage_events" ADD CONSTRAINT "usage_events_account_id_id_created_at_pk" PRIMARY KEY("account_id","id","created_at");--> statement-breakpoint
CREATE INDEX "usage_events_account_idx" ON "usage_events" USING btree ("account_id","created_at");--> statement-breakpoint
ALTER TABLE "usage_events" ADD CONSTRAINT "usage_events_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
-- credit_ledger
ALTER TABLE "credit_ledger" RENAME TO "credit_ledger_unpartitioned";--> statement-breakpoint
ALTER TABLE "credit_ledger_unpartitioned" DROP CONSTRAINT "credit_ledger_pkey";--> statement-breakpoint
ALTER TABLE "credit_ledger_unpartitioned" DROP CONSTRAINT "credit_ledger_source_key_unique";--> statement-breakpoint
DROP INDEX "credit_ledger_account_idx";--> statement-breakpoint
DROP TRIGGER "credit_ledger_no_update_delete" ON "credit_ledger_unpartitioned";--> statement-breakpoint
CREATE TABLE "credit_ledger" (LIKE "credit_ledger_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");--> statement-breakpoint
ALTER SEQUENCE "credit_ledger_id_seq" OWNED BY "credit_ledger"."id";--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_id_created_at_pk" PRIMARY KEY("id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "credit_ledger_source_key_month" ON "credit_ledger" USING btree ("source_key","created_at");--> statement-breakpoint
CREATE INDEX "credit_ledger_account_idx" ON "credit_ledger" USING btree ("account_id","id");--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE TRIGGER credit_ledger_no_update_delete BEFORE UPDATE OR DELETE ON "credit_ledger" FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();--> statement-breakpoint
CREATE TRIGGER credit_ledger_source_key_once BEFORE INSERT ON "credit_ledger" FOR EACH ROW WHEN (NEW.kind <> 'usage') EXECUTE FUNCTION credit_ledger_source_key_once();--> statement-breakpoint
-- audit_events
ALTER TABLE "audit_events" RENAME TO "audit_events_unpartitioned";--> statement-breakpoint
ALTER TABLE "audit_events_unpartitioned" DROP CONSTRAINT "audit_events_pkey";--> statement-breakpoint
DROP INDEX "audit_events_account_idx";--> statement-breakpoint
DROP TRIGGER "audit_events_no_update_delete" ON "audit_events_unpartitioned";--> statement-breakpoint
CREATE TABLE "audit_events" (LIKE "audit_events_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("at");--> statement-breakpoint
ALTER SEQUENCE "audit_events_id_seq" OWNED BY "audit_events"."id";--> statement-breakpoint
ALTER TABLE "audit_events" ADD CONSTRAINT "audit_events_id_at_pk" PRIMARY KEY("id","at");--> statement-breakpoint
CREATE INDEX "audit_events_account_idx" ON "audit_events" USING btree ("account_id","id");--> statement-breakpoint
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON "audit_events" FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();--> statement-breakpoint
-- webhook_attempts
ALTER TABLE "webhook_attempts" RENAME TO "webhook_attempts_unpartitioned";--> statement-breakpoint
ALTER TABLE "webhook_attempts_unpartitioned" DROP CONSTRAINT "webhook_attempts_pkey";--> statement-breakpoint
DROP INDEX "webhook_attempts_delivery_idx";--> statement-breakpoint
CREATE TABLE "webhook_attempts" (LIKE "webhook_attempts_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("attempted_at");--> statement-breakpoint
ALTER SEQUENCE "webhook_attempts_id_seq" OWNED BY "webhook_attempts"."id";--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_id_attempted_at_pk" PRIMARY KEY("id","attempted_at");--> statement-breakpoint
CREATE INDEX "webhook_attempts_delivery_idx" ON "webhook_attempts" USING btree ("delivery_id","id");--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_delivery_id_webhook_deliveries_id_fk" FOREIGN KEY ("delivery_id") REFERENCES "public"."webhook_deliveries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
-- Months: a DEFAULT partition each, then every month from the oldest row kept (or this one) to
-- two months ahead, then the rows themselves.
DO $$
DECLARE
  t record;
  oldest timestamptz;
  m timestamptz;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('usage_events', 'created_at'), ('credit_ledger', 'created_at'), ('audit_events', 'at'), ('webhook_attempts', 'attempted_at')) AS v(name, col) LOOP
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t.name || '_default', t.name);
    EXECUTE format('SELECT min(%I) FROM %I WHERE %I > now() - interval ''20 years''', t.col, t.name || '_unpartitioned', t.col) INTO oldest;
    m := least(coalesce(oldest, now()), now());
    WHILE m < now() + interval '3 months' LOOP
      PERFORM billing_history_partition(t.name, m);
      m := m + interval '1 month';
    END LOOP;
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t.name, t.name || '_unpartitioned');
    EXECUTE format('DROP TABLE %I', t.name || '_unpartitioned');
  END LOOP;
END $$;
