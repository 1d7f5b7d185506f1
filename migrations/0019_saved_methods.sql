ALTER TABLE "payment_methods" ADD COLUMN "last4" text;--> statement-breakpoint
ALTER TABLE "payment_methods" ADD COLUMN "is_default" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "payment_methods" ADD COLUMN "status" text DEFAULT 'active' NOT NULL;--> statement-breakpoint
ALTER TABLE "payment_methods" ADD COLUMN "removed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "payment_methods" ADD COLUMN "mandate_max_amount" bigint;--> statement-breakpoint
ALTER TABLE "payment_methods" ADD COLUMN "mandate_valid_until" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "payment_methods_account_idx" ON "payment_methods" USING btree ("account_id");--> statement-breakpoint
CREATE UNIQUE INDEX "payment_methods_one_default" ON "payment_methods" USING btree ("account_id") WHERE "payment_methods"."is_default" and "payment_methods"."status" = 'active';--> statement-breakpoint
-- The method a live subscription charges is its account's default; otherwise the newest.
UPDATE "payment_methods" m SET "is_default" = true
FROM "subscriptions" s
WHERE s."payment_method_id" = m."id" AND s."status" IN ('active', 'past_due');--> statement-breakpoint
UPDATE "payment_methods" m SET "is_default" = true
WHERE m."id" IN (
  SELECT DISTINCT ON (p."account_id") p."id" FROM "payment_methods" p
  WHERE NOT EXISTS (SELECT 1 FROM "payment_methods" d WHERE d."account_id" = p."account_id" AND d."is_default")
  ORDER BY p."account_id", p."created_at" DESC, p."id" DESC
);--> statement-breakpoint
-- Cards saved before: the last four digits the sandbox reports for their test token.
UPDATE "payment_methods" m SET "last4" = CASE v."instrument"
    WHEN 'tok_visa' THEN '4242' WHEN 'tok_mastercard' THEN '4444' WHEN 'tok_rupay' THEN '6075'
    WHEN 'tok_chargeDeclined' THEN '0002' WHEN 'tok_chargeDeclinedInsufficientFunds' THEN '9995'
    WHEN 'tok_timeout' THEN '0077' WHEN 'tok_chargeCustomerFail' THEN '0341' ELSE '0000' END
FROM "sandbox_payment_methods" v
WHERE m."type" = 'card' AND v."reference" = m."reference";
