-- Usage event ids are unique per account, not globally: one account cannot claim another's ids.
ALTER TABLE "usage_events" DROP CONSTRAINT "usage_events_pkey";--> statement-breakpoint
ALTER TABLE "usage_events" ADD CONSTRAINT "usage_events_account_id_id_pk" PRIMARY KEY("account_id","id");--> statement-breakpoint
-- Accounts already past_due get their grace counted from their last change.
UPDATE "accounts" SET "past_due_since" = "updated_at" WHERE "status" = 'past_due' AND "past_due_since" IS NULL;
