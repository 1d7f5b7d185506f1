-- Partitioned deliveries: the outbox and the two delivery tables it feeds (webhook deliveries,
-- email deliveries) grow with every event, so they become range-partitioned by calendar month
-- (UTC) like the history of 0026, and retention drops whole months (src/db/history.ts).
--
-- The outbox by its own created_at. A delivery by its EVENT's created_at (new column
-- event_created_at), not its own: its unique key ((endpoint, event) for webhooks, (event,
-- template) for emails) must then include the partition key, and an event has one creation time,
-- so (endpoint, event, event_created_at) is exactly as unique as (endpoint, event): a re-run job
-- finds its row in the same month whenever it runs. An event id also carries its creation time
-- to the millisecond (src/lib/ids.ts), so (event_id, created_at) in the outbox is as unique as
-- event_id. A month of deliveries is dropped only after the outbox's same month: no event can be
-- dispatched again and find its deliveries gone.
--
-- webhook_attempts loses its foreign key to webhook_deliveries: the two are partitioned by
-- different times and each month is dropped on its own.

ALTER TABLE "webhook_attempts" DROP CONSTRAINT "webhook_attempts_delivery_id_webhook_deliveries_id_fk";--> statement-breakpoint
-- webhook_deliveries, its event's time first (from the outbox, to the millisecond as the service
-- reads it and writes it again for a re-run; a delivery whose event is gone keeps its own
-- creation time)
ALTER TABLE "webhook_deliveries" RENAME TO "webhook_deliveries_unpartitioned";--> statement-breakpoint
ALTER TABLE "webhook_deliveries_unpartitioned" ADD COLUMN "event_created_at" timestamp with time zone;--> statement-breakpoint
UPDATE "webhook_deliveries_unpartitioned" d SET "event_created_at" = coalesce((SELECT date_trunc('milliseconds', o."created_at") FROM "outbox" o WHERE o."event_id" = d."event_id"), d."created_at");--> statement-breakpoint
ALTER TABLE "webhook_deliveries_unpartitioned" ALTER COLUMN "event_created_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_deliveries_unpartitioned" DROP CONSTRAINT "webhook_deliveries_pkey";--> statement-breakpoint
ALTER TABLE "webhook_deliveries_unpartitioned" DROP CONSTRAINT "webhook_deliveries_endpoint_id_webhook_endpoints_id_fk";--> statement-breakpoint
DROP INDEX "webhook_deliveries_endpoint_event_key";--> statement-breakpoint
DROP INDEX "webhook_deliveries_due_idx";--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (LIKE "webhook_deliveries_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("event_created_at");--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_id_event_created_at_pk" PRIMARY KEY("id","event_created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_endpoint_event_key" ON "webhook_deliveries" USING btree ("endpoint_id","event_id","event_created_at");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_endpoint_idx" ON "webhook_deliveries" USING btree ("endpoint_id","id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" USING btree ("delivery_class","next_attempt_at") WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_id_webhook_endpoints_id_fk" FOREIGN KEY ("endpoint_id") REFERENCES "public"."webhook_endpoints"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
-- email_deliveries, the same way
ALTER TABLE "email_deliveries" RENAME TO "email_deliveries_unpartitioned";--> statement-breakpoint
ALTER TABLE "email_deliveries_unpartitioned" ADD COLUMN "event_created_at" timestamp with time zone;--> statement-breakpoint
UPDATE "email_deliveries_unpartitioned" d SET "event_created_at" = coalesce((SELECT date_trunc('milliseconds', o."created_at") FROM "outbox" o WHERE o."event_id" = d."event_id"), d."created_at");--> statement-breakpoint
ALTER TABLE "email_deliveries_unpartitioned" ALTER COLUMN "event_created_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "email_deliveries_unpartitioned" DROP CONSTRAINT "email_deliveries_pkey";--> statement-breakpoint
DROP INDEX "email_deliveries_event_template_key";--> statement-breakpoint
CREATE TABLE "email_deliveries" (LIKE "email_deliveries_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("event_created_at");--> statement-breakpoint
ALTER TABLE "email_deliveries" ADD CONSTRAINT "email_deliveries_id_event_created_at_pk" PRIMARY KEY("id","event_created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "email_deliveries_event_template_key" ON "email_deliveries" USING btree ("event_id","template","event_created_at");--> statement-breakpoint
-- outbox
ALTER TABLE "outbox" RENAME TO "outbox_unpartitioned";--> statement-breakpoint
ALTER TABLE "outbox_unpartitioned" DROP CONSTRAINT "outbox_pkey";--> statement-breakpoint
ALTER TABLE "outbox_unpartitioned" DROP CONSTRAINT "outbox_event_id_unique";--> statement-breakpoint
DROP INDEX "outbox_unrelayed_idx";--> statement-breakpoint
DROP INDEX "outbox_account_idx";--> statement-breakpoint
DROP INDEX "outbox_unhandled_idx";--> statement-breakpoint
CREATE TABLE "outbox" (LIKE "outbox_unpartitioned" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE ("created_at");--> statement-breakpoint
ALTER SEQUENCE "outbox_id_seq" OWNED BY "outbox"."id";--> statement-breakpoint
ALTER TABLE "outbox" ADD CONSTRAINT "outbox_id_created_at_pk" PRIMARY KEY("id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_event_id_created_at_key" ON "outbox" USING btree ("event_id","created_at");--> statement-breakpoint
CREATE INDEX "outbox_unrelayed_idx" ON "outbox" USING btree ("id") WHERE "outbox"."relayed_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_account_idx" ON "outbox" USING btree ("account_id","id");--> statement-breakpoint
CREATE INDEX "outbox_unhandled_idx" ON "outbox" USING btree ("relayed_at") WHERE "outbox"."relayed_at" is not null and "outbox"."handled_at" is null;--> statement-breakpoint
-- Months: a DEFAULT partition each, then every month from the oldest row kept (or this one) to
-- two months ahead, then the rows themselves (as in 0026).
DO $$
DECLARE
  t record;
  oldest timestamptz;
  m timestamptz;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('outbox', 'created_at'), ('webhook_deliveries', 'event_created_at'), ('email_deliveries', 'event_created_at')) AS v(name, col) LOOP
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
