ALTER TABLE "accounts" ADD COLUMN "billing_profile" jsonb;--> statement-breakpoint
ALTER TABLE "invoices" ADD COLUMN "tax_components" jsonb;--> statement-breakpoint
ALTER TABLE "invoices" ADD COLUMN "supply" jsonb;