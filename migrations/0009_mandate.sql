ALTER TABLE "subscriptions" ADD COLUMN "renewal_notice_for" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "subscriptions" ADD COLUMN "renewal_notice_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "auto_recharge_settings" ADD COLUMN "notice_sent_at" timestamp with time zone;