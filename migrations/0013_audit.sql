CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor_key_id" text NOT NULL,
	"action" text NOT NULL,
	"account_id" text,
	"target" text,
	"request_id" text,
	"status" integer,
	"details" jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_events_account_idx" ON "audit_events" USING btree ("account_id","id");--> statement-breakpoint
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON "audit_events"
  FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only();
