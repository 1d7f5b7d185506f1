/**
 * One error type with a stable machine-readable code. The code decides the HTTP status;
 * routes and services throw AppError and never build responses for failures themselves.
 */
export const errorCodes = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  idempotency_key_required: { status: 400, title: 'This operation needs an Idempotency-Key header' },
  malformed_request: { status: 400, title: 'The request could not be read' },
  unauthenticated: { status: 401, title: 'A valid API key is required' },
  insufficient_scope: { status: 403, title: 'The API key lacks the scope this operation needs' },
  account_bound_key: { status: 403, title: 'A key bound to one account cannot do this' },
  route_not_found: { status: 404, title: 'No such route' },
  account_not_found: { status: 404, title: 'No such account' },
  api_key_not_found: { status: 404, title: 'No such API key' },
  credit_note_not_found: { status: 404, title: 'No such credit note' },
  hold_not_found: { status: 404, title: 'No such hold' },
  billing_profile_not_found: { status: 404, title: 'No billing profile yet' },
  plan_not_found: { status: 404, title: 'No such plan' },
  whitelisted_number_not_found: { status: 404, title: 'The number is not on the whitelist' },
  invoice_not_found: { status: 404, title: 'No such invoice' },
  webhook_endpoint_not_found: { status: 404, title: 'No such webhook endpoint' },
  webhook_delivery_not_found: { status: 404, title: 'No such webhook delivery' },
  exophone_not_found: { status: 404, title: 'No such ExoPhone' },
  payment_not_found: { status: 404, title: 'No such payment' },
  payment_method_not_found: { status: 404, title: 'No such payment method' },
  subscription_not_found: { status: 404, title: 'The account has no subscription' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  payment_declined: { status: 402, title: 'The payment was declined' },
  kyc_not_approved: { status: 409, title: 'KYC must be approved before upgrading' },
  account_not_in_trial: { status: 409, title: 'Only a trial or limited account can upgrade' },
  upgrade_in_progress: { status: 409, title: 'An upgrade payment for this account is already in progress' },
  insufficient_credits: { status: 409, title: 'Not enough credits' },
  hold_not_active: { status: 409, title: 'The hold has ended (settled, released or expired)' },
  exophone_limit_reached: { status: 409, title: 'The plan\'s ExoPhone limit is reached' },
  exophone_taken: { status: 409, title: 'The number belongs to another account' },
  paid_plan_required: { status: 409, title: 'This needs a paid plan' },
  renewal_pending: { status: 409, title: 'The period has ended and its renewal is being processed; retry shortly' },
  webhook_delivery_in_flight: { status: 409, title: 'The delivery is being attempted' },
  plan_unchanged: { status: 409, title: 'The subscription is already on this plan' },
  billing_cycle_unchanged: { status: 409, title: 'The subscription is already on this billing cycle' },
  subscription_not_active: { status: 409, title: 'The subscription is not active' },
  subscription_not_cancelling: { status: 409, title: 'The subscription is not scheduled to cancel' },
  no_scheduled_change: { status: 404, title: 'No plan change is scheduled' },
  test_clocks_disabled: { status: 404, title: 'Test clocks are not enabled' },
  test_clock_not_found: { status: 404, title: 'No such test clock' },
  test_clock_backwards: { status: 409, title: 'A test clock only moves forward' },
  payment_not_confirmable: { status: 409, title: 'The payment is not awaiting an offline confirmation' },
  invoice_not_payable: { status: 409, title: 'The invoice cannot be paid: it is not open, or not of a kind paid here' },
  invoice_payment_in_progress: { status: 409, title: 'A charge of this invoice is already in flight; retry shortly' },
  payment_method_in_use: { status: 409, title: 'The payment method is charged by the subscription or auto-recharge' },
  payment_method_is_default: { status: 409, title: 'The default payment method cannot be removed while others exist' },
  kyc_transition_not_allowed: { status: 409, title: 'This KYC status change is not allowed' },
  whitelist_limit_reached: { status: 409, title: 'The trial whitelist is full' },
  whitelist_not_applicable: { status: 409, title: 'Number whitelisting applies only to trial accounts' },
  plan_version_conflict: { status: 409, title: 'The plan has a newer version' },
  last_ops_key: { status: 409, title: 'The last active ops key cannot be revoked' },
  idempotency_request_in_progress: { status: 409, title: 'A request with this Idempotency-Key is still in progress' },
  request_timeout: { status: 408, title: 'The request was not received in time' },
  uri_too_long: { status: 414, title: 'The URL is too long' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  headers_too_large: { status: 431, title: 'The request headers are too large' },
  invalid_phone_number: { status: 422, title: 'Not a valid E.164 phone number' },
  invalid_gstin: { status: 422, title: 'Not a valid GSTIN for this billing profile' },
  hold_reference_reused: { status: 422, title: 'The reference already holds for another call or message' },
  credit_note_exceeds_invoice: { status: 422, title: 'More than is left of the invoice to credit' },
  invalid_settlement: { status: 422, title: 'The credit note cannot be settled this way' },
  refund_not_possible: { status: 422, title: 'The invoice was not paid through the gateway' },
  credits_already_spent: { status: 409, title: 'The purchased credits were spent' },
  invoice_not_creditable: { status: 409, title: 'The invoice cannot take a credit note' },
  invoice_not_voidable: { status: 409, title: 'The invoice cannot be voided' },
  invalid_billing_profile: { status: 422, title: 'The billing profile cannot be used on tax invoices' },
  invalid_webhook_url: { status: 422, title: 'This URL cannot receive webhooks' },
  idempotency_key_reused: { status: 422, title: 'This Idempotency-Key was used with another request' },
  currency_not_priced: { status: 422, title: 'The plan has no price in the account currency' },
  plan_not_offered: { status: 422, title: 'This plan is not on offer to this account' },
  addon_not_available: { status: 422, title: 'The add-on is not available on this plan' },
  initial_credits_below_minimum: { status: 422, title: 'The initial credits are below the plan minimum' },
  payment_method_not_allowed: { status: 422, title: 'This payment method is not allowed for this account, plan and cycle' },
  invalid_auto_recharge: { status: 422, title: 'The auto-recharge settings make no sense' },
  payment_amount_mismatch: { status: 422, title: 'The amount confirmed differs from the amount due' },
  payment_method_required: { status: 422, title: 'Give a payment method: the account has no default one' },
  mandate_above_cap: { status: 422, title: 'An e-mandate above the cap needs the customer\'s authentication' },
  mandate_not_applicable: { status: 422, title: 'E-mandates apply to Indian card and UPI methods only' },
  rate_limited: { status: 429, title: 'Too many requests' },
  internal_error: { status: 500, title: 'Internal error' },
  service_unavailable: { status: 503, title: 'A dependency is unavailable' },
  database_unavailable: { status: 503, title: 'The database is unavailable; retry shortly' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCodes;

export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  readonly title: string;

  constructor(
    readonly code: ErrorCode,
    detail?: string,
    readonly extra: { errors?: FieldError[]; [key: string]: unknown } = {},
  ) {
    super(detail ?? errorCodes[code].title);
    this.name = 'AppError';
    this.status = errorCodes[code].status;
    this.title = errorCodes[code].title;
  }
}

export const problemType = (code: string): string => `urn:billing-service:problem:${code}`;
