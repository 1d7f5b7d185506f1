CREATE TABLE "credit_alerts" (
	"account_id" text PRIMARY KEY NOT NULL,
	"low_balance_threshold" bigint,
	"forecast_horizon_hours" integer,
	"low_balance_alerted_at" timestamp with time zone,
	"low_balance_alert_threshold" bigint,
	"forecast_alerted_at" timestamp with time zone,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "credit_holds" (
	"id" text PRIMARY KEY NOT NULL,
	"account_id" text NOT NULL,
	"reference" text NOT NULL,
	"action" text NOT NULL,
	"destination" text,
	"units" integer NOT NULL,
	"unit_amount" bigint NOT NULL,
	"amount" bigint NOT NULL,
	"currency" "currency" NOT NULL,
	"status" text NOT NULL,
	"ttl_seconds" integer NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"usage_event_id" text,
	"settled_amount" bigint,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_holds_amount" CHECK ("credit_holds"."amount" >= 0 and "credit_holds"."units" >= 0)
);
--> statement-breakpoint
ALTER TABLE "credit_balances" ADD COLUMN "held" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "usage_events" ADD COLUMN "hold_id" text;--> statement-breakpoint
ALTER TABLE "usage_events" ADD COLUMN "shortfall" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "credit_alerts" ADD CONSTRAINT "credit_alerts_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_holds" ADD CONSTRAINT "credit_holds_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "credit_holds_reference_key" ON "credit_holds" USING btree ("account_id","reference");--> statement-breakpoint
CREATE INDEX "credit_holds_expiry_idx" ON "credit_holds" USING btree ("expires_at") WHERE "credit_holds"."status" = 'active';--> statement-breakpoint
ALTER TABLE "credit_balances" ADD CONSTRAINT "credit_balances_held_within_balance" CHECK ("credit_balances"."held" >= 0 and "credit_balances"."held" <= "credit_balances"."balance");
--> statement-breakpoint
-- Authorize reads the available balance (balance - held): announce a change that starts or
-- ends with less available than the highest per-unit rate, whether the balance or the holds moved.
CREATE OR REPLACE FUNCTION notify_balance_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  low bigint := (SELECT coalesce(max(greatest(per_pulse_rate, per_sms_rate)), 0) FROM plan_prices);
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM pg_notify('billing_changes', 'balance:' || n.account_id)
      FROM changed_new n JOIN changed_old o ON o.account_id = n.account_id
     WHERE least(o.balance - o.held, n.balance - n.held) < low AND (o.balance - o.held) IS DISTINCT FROM (n.balance - n.held);
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('billing_changes', 'balance:' || n.account_id) FROM changed_new n;
  ELSE
    PERFORM pg_notify('billing_changes', 'balance:' || o.account_id) FROM changed_old o;
  END IF;
  RETURN NULL;
END $$;
