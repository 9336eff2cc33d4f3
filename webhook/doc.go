// Package webhook delivers webhooks through hopper: an app sends an event
// once, and every endpoint subscribed to its type gets a signed HTTP POST,
// each delivery a hopper job of its own with its own retries, so one dead
// endpoint never holds up the others.
//
// # Pieces
//
//   - Endpoint: a receiver URL with a signing secret and the event types it
//     subscribes to ("task:created", "task:*", "*"; see Match).
//   - EndpointStore: where endpoints live. MemoryStore for endpoints
//     configured in code, RedisStore for endpoints managed at run time, or
//     an implementation of your own.
//   - Dispatcher: New(queue, store, cfg). Send(ctx, event) enqueues one
//     delivery job per subscribed, enabled endpoint, atomically; Handler()
//     is the hopper.Handler workers run to deliver them.
//   - Verify and Middleware: the receiver's side, checking signatures.
//
// A producer and a worker in one process, end to end, is the runnable
// Example (Example_send); examples/webhooks in the repository adds receivers
// that verify signatures.
//
// # The request
//
// Each attempt is a POST to the endpoint URL with this JSON body, the same
// bytes on every attempt:
//
//	{"id":"<event ID>","type":"<event type>","occurred_at":"<RFC 3339, UTC>","data":<event payload>}
//
// and these headers (plus Endpoint.Headers):
//
//	Content-Type:        application/json
//	User-Agent:          hopper-webhook/1 (Config.UserAgent)
//	Hopper-Event:        the event type, e.g. task:created
//	Hopper-Event-Id:     the event ID
//	Hopper-Delivery-Id:  wh:<event ID>:<endpoint ID>, the same on every attempt
//	Hopper-Attempt:      1 on the first try, counting failed attempts
//	Hopper-Signature:    t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// A delivery may arrive more than once (a timeout after the receiver
// processed it, a worker crash): receivers should deduplicate on
// Hopper-Delivery-Id (or Hopper-Event-Id, which is the same per endpoint).
//
// # The signature
//
// Hopper-Signature is "t=<timestamp>,v1=<signature>": timestamp is the time
// of the attempt in Unix seconds (decimal), and signature is the lowercase hex
// HMAC-SHA256 keyed with the endpoint secret (its bytes, as given) of the
// timestamp, a '.', and the raw body:
//
//	v1 = hex(HMAC_SHA256(key = secret, message = timestamp + "." + body))
//
// To verify, in any language: read the raw body before parsing it; split the
// header on ',' and each part on its first '='; compute the HMAC of t + "." +
// body; compare it in constant time with each v1 value (there may be several
// during a secret rotation; ignore unknown keys); accept if one matches and
// t is within a tolerance (5 minutes) of your clock. Verify and Middleware do
// exactly this.
//
// # Answers and retries
//
// What the receiver answers decides the delivery's fate (see
// Dispatcher.Handler for details):
//
//	2xx                 delivered: the job completes with a Result (status, 1 KiB of the body)
//	410 Gone            the endpoint is disabled in the store; the job completes, no retry
//	3xx                 dead-lettered at once, naming the Location: redirects are never followed
//	other 4xx           dead-lettered at once, status and body excerpt in the dead reason
//	429, 408, 5xx       retried with backoff, spending an attempt; with a Retry-After header,
//	                    retried after that wait without spending one (see below)
//	no answer           network errors and Endpoint.Timeout expiries are failed attempts
//
// Attempts (Config.Attempts, default 10) and the backoff between them
// (Config.Backoff, default 1 min doubling to 6 h, about 8.5 h in all) apply
// per delivery. When attempts run out the job goes to the queue's
// dead-letter queue, where hopper's DeadLetterQueue can list and retry it.
//
// A 429, 408 or 5xx answer with Retry-After (seconds or an HTTP date) is honoured
// exactly: the delivery waits that long (at least MinRetryAfter, at most
// Config.MaxRetryAfter, default 1 h) and the attempt is not counted, because
// the receiver is alive and said when to come back; spending attempts on it
// would let a briefly rate-limited receiver exhaust the budget in minutes.
// This holds for Config.RetryAfterWindow (default 24 h) after Send; an
// older delivery treats such answers as failed attempts, so a receiver that
// always answers "later" still ends in the dead-letter queue. A 429 without
// Retry-After is an ordinary failed attempt.
//
// # Idempotency and ordering
//
// A delivery's job ID is DeliveryID(event ID, endpoint ID), so sending the
// same event again adds nothing for endpoints that already have its
// delivery (while the job exists; Config.DedupWindow extends this). Give
// events stable IDs (e.g. from an outbox row) and re-send freely after an
// error. Deliveries are not ordered: each endpoint gets each event as soon as
// its own job runs.
//
// # Security: customer-registered URLs
//
// When your customers register endpoint URLs, a URL can point at your own
// network — an internal admin service, a database's HTTP port, or a cloud
// metadata endpoint such as 169.254.169.254 that hands out credentials —
// and every delivery would make your workers request it (server-side
// request forgery). Refuse such addresses: set Config.Client to
// PublicOnlyClient(), which checks the IP each connection actually dials
// (so DNS tricks cannot bypass it) and refuses loopback, private,
// link-local, multicast and reserved ranges; deliveries it refuses are
// dead-lettered with ErrBlockedAddress. Also validate URLs when endpoints
// are registered (https only, no credentials), and keep the default refusal
// of redirects. The default client allows every address, because endpoints
// configured by you (and tests) often live on private networks.
//
// Endpoints are looked up again by ID when a delivery runs, so URL and secret
// changes apply to queued deliveries, and deliveries to an endpoint disabled
// or deleted meanwhile complete without a request (their Result says why).
package webhook
