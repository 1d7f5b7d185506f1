CREATE TYPE "public"."currency" AS ENUM('INR', 'USD');--> statement-breakpoint
CREATE TYPE "public"."plan_kind" AS ENUM('trial', 'standard', 'custom');--> statement-breakpoint
CREATE TYPE "public"."plan_tier" AS ENUM('trial', 'starter', 'growth', 'enterprise');--> statement-breakpoint
CREATE TYPE "public"."account_status" AS ENUM('trial', 'pending_payment', 'active', 'past_due', 'limited');--> statement-breakpoint
CREATE TYPE "public"."kyc_status" AS ENUM('pending', 'submitted', 'approved', 'rejected');--> statement-breakpoint
CREATE TABLE "billing_cycles" (
	"code" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"months" integer NOT NULL,
	"discount_bps" integer NOT NULL,
	"position" integer NOT NULL,
	CONSTRAINT "billing_cycles_discount_range" CHECK ("billing_cycles"."discount_bps" between 0 and 10000 and "billing_cycles"."months" > 0)
);
--> statement-breakpoint
CREATE TABLE "plan_prices" (
	"plan_id" text NOT NULL,
	"currency" "currency" NOT NULL,
	"monthly_minimum" bigint NOT NULL,
	"min_initial_credits" bigint NOT NULL,
	"pulse_seconds" integer NOT NULL,
	"per_pulse_rate" bigint NOT NULL,
	"per_sms_rate" bigint NOT NULL,
	"whatsapp_addon_monthly" bigint,
	CONSTRAINT "plan_prices_plan_id_currency_pk" PRIMARY KEY("plan_id","currency"),
	CONSTRAINT "plan_prices_non_negative" CHECK ("plan_prices"."monthly_minimum" >= 0 and "plan_prices"."min_initial_credits" >= 0 and "plan_prices"."pulse_seconds" > 0 and "plan_prices"."per_pulse_rate" >= 0 and "plan_prices"."per_sms_rate" >= 0 and coalesce("plan_prices"."whatsapp_addon_monthly", 0) >= 0)
);
--> statement-breakpoint
CREATE TABLE "plans" (
	"id" text PRIMARY KEY NOT NULL,
	"code" text NOT NULL,
	"version" integer NOT NULL,
	"kind" "plan_kind" NOT NULL,
	"tier" "plan_tier" NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"commitment" text NOT NULL,
	"entitlements" jsonb NOT NULL,
	"offered_to_account_id" text,
	"superseded_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "plans_custom_offer_check" CHECK (("plans"."kind" = 'custom') = ("plans"."offered_to_account_id" is not null))
);
--> statement-breakpoint
CREATE TABLE "accounts" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"email" text NOT NULL,
	"country" text NOT NULL,
	"currency" "currency" NOT NULL,
	"status" "account_status" DEFAULT 'trial' NOT NULL,
	"kyc_status" "kyc_status" DEFAULT 'pending' NOT NULL,
	"kyc_reason" text,
	"kyc_updated_at" timestamp with time zone,
	"plan_id" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "accounts_country_check" CHECK ("accounts"."country" ~ '^[A-Z]{2}$')
);
--> statement-breakpoint
CREATE TABLE "whitelisted_numbers" (
	"account_id" text NOT NULL,
	"number" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "whitelisted_numbers_account_id_number_pk" PRIMARY KEY("account_id","number"),
	CONSTRAINT "whitelisted_numbers_e164" CHECK ("whitelisted_numbers"."number" ~ '^\+[1-9][0-9]{6,14}$')
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"scopes" text[] NOT NULL,
	"account_id" text,
	"created_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_hash_unique" UNIQUE("hash")
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event_id" text NOT NULL,
	"type" text NOT NULL,
	"account_id" text,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"relayed_at" timestamp with time zone,
	CONSTRAINT "outbox_event_id_unique" UNIQUE("event_id")
);
--> statement-breakpoint
ALTER TABLE "plan_prices" ADD CONSTRAINT "plan_prices_plan_id_plans_id_fk" FOREIGN KEY ("plan_id") REFERENCES "public"."plans"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_plan_id_plans_id_fk" FOREIGN KEY ("plan_id") REFERENCES "public"."plans"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "whitelisted_numbers" ADD CONSTRAINT "whitelisted_numbers_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "plans_code_version_key" ON "plans" USING btree ("code","version");--> statement-breakpoint
CREATE UNIQUE INDEX "plans_current_code_key" ON "plans" USING btree ("code") WHERE "plans"."superseded_at" is null;--> statement-breakpoint
CREATE INDEX "accounts_email_idx" ON "accounts" USING btree ("email");--> statement-breakpoint
CREATE INDEX "api_keys_account_idx" ON "api_keys" USING btree ("account_id");--> statement-breakpoint
CREATE INDEX "outbox_unrelayed_idx" ON "outbox" USING btree ("id") WHERE "outbox"."relayed_at" is null;--> statement-breakpoint
CREATE INDEX "outbox_account_idx" ON "outbox" USING btree ("account_id","id");