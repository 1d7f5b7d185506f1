-- The change feed behind the api's in-memory caches (API keys, authorization facts). Every
-- write that can change what authorize or authentication answers notifies the channel
-- billing_changes, from the database itself, so no code path (api, worker, ops CLI, a manual
-- fix in psql) can forget to. Postgres delivers a notification only when its transaction
-- commits, in commit order. Payloads: 'account:<id>', 'balance:<id>', 'key:<id>', 'catalog'.

-- Accounts: only the columns authorize reads.
CREATE FUNCTION notify_account_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM pg_notify('billing_changes', 'account:' || n.id)
      FROM changed_new n JOIN changed_old o ON o.id = n.id
     WHERE (o.status, o.kyc_status, o.plan_id, o.dlt_entity_id, o.past_due_since, o.test_clock_id, o.currency)
           IS DISTINCT FROM (n.status, n.kyc_status, n.plan_id, n.dlt_entity_id, n.past_due_since, n.test_clock_id, n.currency);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('billing_changes', 'account:' || o.id) FROM changed_old o;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER accounts_notify_update AFTER UPDATE ON accounts
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION notify_account_changes();
--> statement-breakpoint
CREATE TRIGGER accounts_notify_delete AFTER DELETE ON accounts
  REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION notify_account_changes();
--> statement-breakpoint

-- Balances. Authorize only asks "does the balance cover one pulse or one SMS?", so a change
-- that stays at or above the highest per-unit rate in the catalog cannot change its answer
-- and is not announced: the usage path of a funded account sends nothing. Any change that
-- starts or ends below that line is announced.
CREATE FUNCTION notify_balance_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  low bigint := (SELECT coalesce(max(greatest(per_pulse_rate, per_sms_rate)), 0) FROM plan_prices);
BEGIN
  IF TG_OP = 'UPDATE' THEN
    PERFORM pg_notify('billing_changes', 'balance:' || n.account_id)
      FROM changed_new n JOIN changed_old o ON o.account_id = n.account_id
     WHERE least(o.balance, n.balance) < low AND o.balance IS DISTINCT FROM n.balance;
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('billing_changes', 'balance:' || n.account_id) FROM changed_new n;
  ELSE
    PERFORM pg_notify('billing_changes', 'balance:' || o.account_id) FROM changed_old o;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER credit_balances_notify_update AFTER UPDATE ON credit_balances
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION notify_balance_changes();
--> statement-breakpoint
CREATE TRIGGER credit_balances_notify_insert AFTER INSERT ON credit_balances
  REFERENCING NEW TABLE AS changed_new
  FOR EACH STATEMENT EXECUTE FUNCTION notify_balance_changes();
--> statement-breakpoint
CREATE TRIGGER credit_balances_notify_delete AFTER DELETE ON credit_balances
  REFERENCING OLD TABLE AS changed_old
  FOR EACH STATEMENT EXECUTE FUNCTION notify_balance_changes();
--> statement-breakpoint

-- Rows owned by one account that authorize reads: the subscription (WhatsApp add-on),
-- whitelisted numbers (trial), ExoPhones (the plan's limit).
CREATE FUNCTION notify_account_row_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM pg_notify('billing_changes', 'account:' || OLD.account_id); END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN PERFORM pg_notify('billing_changes', 'account:' || NEW.account_id); END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER subscriptions_notify AFTER INSERT OR DELETE OR UPDATE OF status, whatsapp_addon, account_id ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION notify_account_row_changes();
--> statement-breakpoint
CREATE TRIGGER whitelisted_numbers_notify AFTER INSERT OR DELETE OR UPDATE ON whitelisted_numbers
  FOR EACH ROW EXECUTE FUNCTION notify_account_row_changes();
--> statement-breakpoint
CREATE TRIGGER exophones_notify AFTER INSERT OR DELETE OR UPDATE ON exophones
  FOR EACH ROW EXECUTE FUNCTION notify_account_row_changes();
--> statement-breakpoint

-- API keys: a revocation (or any change) must end the cached key at once.
CREATE FUNCTION notify_api_key_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('billing_changes', 'key:' || OLD.id);
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER api_keys_notify AFTER UPDATE OR DELETE ON api_keys
  FOR EACH ROW EXECUTE FUNCTION notify_api_key_changes();
--> statement-breakpoint

-- The catalog (entitlements, rates): rare, and everything cached may depend on it.
CREATE FUNCTION notify_catalog_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('billing_changes', 'catalog');
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER plans_notify AFTER INSERT OR UPDATE OR DELETE ON plans FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changes();
--> statement-breakpoint
CREATE TRIGGER plan_prices_notify AFTER INSERT OR UPDATE OR DELETE ON plan_prices FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_changes();
