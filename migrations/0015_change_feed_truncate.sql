-- A TRUNCATE fires no row or statement trigger of 0014: announce it as 'reset', which drops
-- every cache (keys, authorization facts) in every api process.
CREATE FUNCTION notify_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('billing_changes', 'reset');
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER accounts_notify_truncate AFTER TRUNCATE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER credit_balances_notify_truncate AFTER TRUNCATE ON credit_balances FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER subscriptions_notify_truncate AFTER TRUNCATE ON subscriptions FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER whitelisted_numbers_notify_truncate AFTER TRUNCATE ON whitelisted_numbers FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER exophones_notify_truncate AFTER TRUNCATE ON exophones FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER api_keys_notify_truncate AFTER TRUNCATE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER plans_notify_truncate AFTER TRUNCATE ON plans FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
--> statement-breakpoint
CREATE TRIGGER plan_prices_notify_truncate AFTER TRUNCATE ON plan_prices FOR EACH STATEMENT EXECUTE FUNCTION notify_reset();
