-- The plan catalog of the product brief, seeded as data so ops can version prices later.
-- Money is in minor units (paise, cents). Where the brief gives only words (low/medium
-- commitment, standard/higher rate limits, small/best discount), these are our defaults.
ALTER TABLE "plans" ADD CONSTRAINT "plans_offered_to_account_id_accounts_id_fk" FOREIGN KEY ("offered_to_account_id") REFERENCES "public"."accounts"("id");--> statement-breakpoint
INSERT INTO "billing_cycles" ("code", "name", "months", "discount_bps", "position") VALUES
  ('monthly', 'Monthly', 1, 0, 1),
  ('quarterly', 'Quarterly', 3, 500, 2),
  ('annual', 'Annual', 12, 1500, 3);--> statement-breakpoint
INSERT INTO "plans" ("id", "code", "version", "kind", "tier", "name", "description", "commitment", "entitlements", "created_at") VALUES
  ('plan_trial_v1', 'trial', 1, 'trial', 'trial', 'Trial', 'Free trial: test your integration with whitelisted numbers.', 'none',
   '{"exophones":{"limit":0,"trialNumbers":1},"numberWhitelisting":{"required":true},"voiceApi":"whitelisted_only","smsApi":"whitelisted_only","smsDltRequiredForIndia":true,"whatsapp":"not_available","campaigns":"not_available","contactCenter":"not_available","callRecording":{"retentionDays":7,"custom":false},"analytics":"standard","support":{"tier":"email_only","channels":["email"]},"sla":{"uptimePercent":null,"custom":false},"apiRateLimit":{"tier":"standard","requestsPerMinute":200},"webhooks":"standard"}',
   '2026-01-01T00:00:00Z'),
  ('plan_starter_v1', 'starter', 1, 'standard', 'starter', 'Starter', 'Low commitment: up to 5 ExoPhones, WhatsApp as an add-on.', 'low',
   '{"exophones":{"limit":5,"trialNumbers":0},"numberWhitelisting":{"required":false},"voiceApi":"full","smsApi":"full","smsDltRequiredForIndia":true,"whatsapp":"add_on","campaigns":"basic","contactCenter":"not_available","callRecording":{"retentionDays":30,"custom":false},"analytics":"standard","support":{"tier":"email_chat","channels":["email","chat"]},"sla":{"uptimePercent":99.5,"custom":false},"apiRateLimit":{"tier":"standard","requestsPerMinute":200},"webhooks":"standard"}',
   '2026-01-01T00:00:00Z'),
  ('plan_growth_v1', 'growth', 1, 'standard', 'growth', 'Growth', 'Medium commitment: up to 20 ExoPhones, WhatsApp included, priority support.', 'medium',
   '{"exophones":{"limit":20,"trialNumbers":0},"numberWhitelisting":{"required":false},"voiceApi":"full","smsApi":"full","smsDltRequiredForIndia":true,"whatsapp":"included","campaigns":"advanced","contactCenter":"basic","callRecording":{"retentionDays":90,"custom":false},"analytics":"advanced","support":{"tier":"priority","channels":["email","chat","phone"]},"sla":{"uptimePercent":99.9,"custom":false},"apiRateLimit":{"tier":"higher","requestsPerMinute":1000},"webhooks":"priority"}',
   '2026-01-01T00:00:00Z'),
  ('plan_enterprise_v1', 'enterprise', 1, 'standard', 'enterprise', 'Enterprise', 'Custom commitment: unlimited ExoPhones, full suite, dedicated account manager.', 'custom',
   '{"exophones":{"limit":null,"trialNumbers":0},"numberWhitelisting":{"required":false},"voiceApi":"full","smsApi":"full","smsDltRequiredForIndia":true,"whatsapp":"included","campaigns":"full_suite","contactCenter":"full","callRecording":{"retentionDays":365,"custom":true},"analytics":"custom_dashboards","support":{"tier":"dedicated_account_manager","channels":["email","chat","phone"]},"sla":{"uptimePercent":99.95,"custom":true},"apiRateLimit":{"tier":"custom","requestsPerMinute":5000},"webhooks":"guaranteed"}',
   '2026-01-01T00:00:00Z');--> statement-breakpoint
INSERT INTO "plan_prices" ("plan_id", "currency", "monthly_minimum", "min_initial_credits", "pulse_seconds", "per_pulse_rate", "per_sms_rate", "whatsapp_addon_monthly") VALUES
  ('plan_starter_v1', 'INR', 250000, 100000, 60, 60, 25, 100000),
  ('plan_starter_v1', 'USD', 4900, 2000, 60, 2, 1, 1500),
  ('plan_growth_v1', 'INR', 1000000, 500000, 60, 50, 22, NULL),
  ('plan_growth_v1', 'USD', 19900, 5000, 60, 2, 1, NULL),
  ('plan_enterprise_v1', 'INR', 5000000, 2500000, 60, 40, 20, NULL),
  ('plan_enterprise_v1', 'USD', 99900, 20000, 60, 1, 1, NULL);
