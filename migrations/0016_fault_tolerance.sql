ALTER TABLE "outbox" ADD COLUMN "handled_at" timestamp with time zone;--> statement-breakpoint
-- Rows relayed before this migration: their jobs ran under the old rules; count them handled.
UPDATE "outbox" SET "handled_at" = "relayed_at" WHERE "relayed_at" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "payments" ADD COLUMN "touched_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
CREATE INDEX "outbox_unhandled_idx" ON "outbox" USING btree ("relayed_at") WHERE "outbox"."relayed_at" is not null and "outbox"."handled_at" is null;
