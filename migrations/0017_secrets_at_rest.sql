CREATE TABLE "sandbox_payment_methods" (
	"reference" text PRIMARY KEY NOT NULL,
	"idempotency_key" text NOT NULL,
	"type" text NOT NULL,
	"instrument" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "sandbox_payment_methods_idempotency_key_unique" UNIQUE("idempotency_key")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "hash_kid" text;--> statement-breakpoint
-- Saved methods held the card token, VPA or bank code itself. Move each into the sandbox
-- provider's vault (the only provider so far) and keep only its reference there; a UPI
-- method's label becomes its masked VPA (ra***@okhdfc), as new ones get.
INSERT INTO "sandbox_payment_methods" ("reference", "idempotency_key", "type", "instrument", "created_at")
SELECT 'spm_' || "id", "id", "type"::text, "reference", "created_at"
FROM "payment_methods"
WHERE "type" IN ('card', 'upi', 'netbanking') AND "reference" IS NOT NULL;--> statement-breakpoint
UPDATE "payment_methods"
SET "reference" = 'spm_' || "id",
	"label" = CASE
		WHEN "type" = 'upi' THEN left(split_part("reference", '@', 1), least(2, length(split_part("reference", '@', 1)) / 2)) || '***@' || split_part("reference", '@', 2)
		ELSE "label"
	END
WHERE "type" IN ('card', 'upi', 'netbanking') AND "reference" IS NOT NULL;
