package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hopperq/hopper"
)

// Result is what a delivery job stores (hopper.Job.Result, JSON) when it
// completes: a 2xx answer, a 410 that disabled the endpoint, or a delivery
// skipped because its endpoint was disabled or deleted after Send.
type Result struct {
	Endpoint string `json:"endpoint"`
	URL      string `json:"url,omitempty"` // password redacted
	// Delivered is true for a 2xx answer.
	Delivered bool `json:"delivered"`
	// Status is the HTTP status (0 if no request was made).
	Status int `json:"status,omitempty"`
	// Response is the start of the response body (MaxResponseExcerpt bytes
	// at most, cut at a UTF-8 boundary).
	Response   string `json:"response,omitempty"`
	DurationMs int64  `json:"duration_ms,omitempty"`
	// Attempt is the attempt number that completed (1 = first try).
	Attempt int `json:"attempt"`
	// Note explains a completion without delivery.
	Note string `json:"note,omitempty"`
}

// Handler returns the hopper.Handler that delivers the jobs Send enqueues.
// Run it in workers of the dispatcher's queue: register it on a hopper.Mux
// under JobName(), or pass it to hopper.NewWorker directly when the queue
// carries nothing but deliveries. The worker's store must hold the same
// endpoints as the producer's.
//
// For each job it looks up the endpoint by ID (a deleted or disabled one
// completes the job without a request), POSTs the body with the headers and
// signature described in the package documentation under Endpoint.Timeout,
// and maps the answer:
//
//   - 2xx: completed, with a Result (status, response excerpt) as job result;
//   - 410 Gone: the endpoint is disabled through the store, and the job
//     completes with a Result noting it; no retry;
//   - 3xx: hopper.Permanent(*StatusError) naming the Location; redirects are
//     never followed;
//   - 429, 408 and 5xx with a Retry-After header (seconds or an HTTP date):
//     hopper.RetryAfter(*StatusError) — retried after that wait (at least
//     MinRetryAfter, at most Config.MaxRetryAfter) without spending an
//     attempt, while the delivery is younger than Config.RetryAfterWindow;
//   - 429, 408 and 5xx otherwise, and any status below 200: a failed attempt
//     (*StatusError), retried with the backoff until the attempts run out;
//   - other 4xx: hopper.Permanent(*StatusError): dead-lettered at once, with
//     the status and response excerpt in the dead reason;
//   - network errors and timeouts: a failed attempt.
//
// Safe for concurrent use.
func (d *Dispatcher) Handler() hopper.Handler { return hopper.HandlerFunc(d.deliver) }

func (d *Dispatcher) deliver(ctx context.Context, job *hopper.Job) error {
	var p delivery
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Endpoint == "" || len(p.Body) == 0 {
		return hopper.Permanent(fmt.Errorf("webhook: job %s (%s) is not a webhook delivery: bad payload (%v)", job.ID, job.Name, err))
	}
	attempt := job.AttemptsMade + 1
	e, err := d.store.Get(ctx, p.Endpoint)
	if errors.Is(err, ErrEndpointNotFound) {
		d.setResult(job, Result{Endpoint: p.Endpoint, Attempt: attempt, Note: "not delivered: the endpoint no longer exists"})
		return nil
	}
	if err != nil {
		return fmt.Errorf("webhook: delivery %s: look up endpoint %s: %w", job.ID, p.Endpoint, err)
	}
	redacted := e.redactedURL()
	if e.Disabled {
		d.setResult(job, Result{Endpoint: e.ID, URL: redacted, Attempt: attempt,
			Note: "not delivered: the endpoint is disabled: " + e.DisabledReason})
		return nil
	}
	if err := e.Validate(); err != nil {
		return hopper.Permanent(fmt.Errorf("webhook: delivery %s: %w", job.ID, err))
	}

	rctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, e.URL, bytes.NewReader(p.Body))
	if err != nil {
		return hopper.Permanent(fmt.Errorf("webhook: delivery %s: endpoint %s: %w", job.ID, e.ID, err))
	}
	for k, v := range e.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	req.Header.Set(HeaderEvent, p.Event)
	req.Header.Set(HeaderEventID, p.EventID)
	req.Header.Set(HeaderDeliveryID, job.ID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req.Header.Set(HeaderSignature, Sign(e.Secret, d.cfg.Clock(), p.Body))

	start := time.Now()
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil: // the job ended (timeout, lost lease, shutdown): hopper decides
			return fmt.Errorf("webhook: delivery %s to endpoint %s interrupted: %w", job.ID, e.ID, context.Cause(ctx))
		case errors.Is(rctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("webhook: endpoint %s (%s) did not answer within its timeout of %s", e.ID, redacted, e.timeout())
		}
		if errors.Is(err, ErrBlockedAddress) { // PublicOnlyClient: a retry cannot change where the URL points
			return hopper.Permanent(fmt.Errorf("webhook: endpoint %s: %w", e.ID, err))
		}
		return fmt.Errorf("webhook: endpoint %s: %w", e.ID, err) // *url.Error, password already stripped
	}
	excerpt := readExcerpt(resp.Body)
	elapsed := time.Since(start)
	se := &StatusError{Endpoint: e.ID, URL: redacted, Status: resp.StatusCode, Body: excerpt}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		d.setResult(job, Result{Endpoint: e.ID, URL: redacted, Delivered: true, Status: code, Response: excerpt,
			DurationMs: elapsed.Milliseconds(), Attempt: attempt})
		return nil
	case code == http.StatusGone:
		reason := fmt.Sprintf("the receiver answered 410 Gone to delivery %s at %s", job.ID,
			d.cfg.Clock().UTC().Format(time.RFC3339))
		if err := d.store.Disable(ctx, e.ID, reason); err != nil && !errors.Is(err, ErrEndpointNotFound) {
			return fmt.Errorf("webhook: endpoint %s answered 410 Gone but could not be disabled: %w", e.ID, err)
		}
		d.cfg.Logger.Warn("webhook: endpoint disabled", "endpoint", e.ID, "url", redacted, "reason", reason)
		d.setResult(job, Result{Endpoint: e.ID, URL: redacted, Status: code, Response: excerpt,
			DurationMs: elapsed.Milliseconds(), Attempt: attempt, Note: "endpoint disabled: " + reason})
		return nil
	case code >= 300 && code < 400:
		se.Location = truncate(resp.Header.Get("Location"), 512)
		return hopper.Permanent(se)
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500 || code < 200:
		now := d.cfg.Clock()
		if ra, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok && code >= 400 {
			se.RetryAfter = min(max(ra, MinRetryAfter), d.cfg.MaxRetryAfter)
			// Deferring spends no attempt (the receiver is up and said when
			// to come back), but only within the window: a receiver that
			// always says "later" must not keep a delivery alive forever.
			if job.CreatedAt.IsZero() || now.Sub(job.CreatedAt) < d.cfg.RetryAfterWindow {
				return hopper.RetryAfter(se.RetryAfter, se)
			}
		}
		return se
	default: // other 4xx
		return hopper.Permanent(se)
	}
}

func (d *Dispatcher) setResult(job *hopper.Job, r Result) {
	b, err := json.Marshal(r)
	if err != nil {
		return // cannot happen: Result holds only strings and numbers
	}
	job.SetResult(b)
}

// readExcerpt returns the first MaxResponseExcerpt bytes of body (cut at a
// UTF-8 boundary, trimmed), then drains a bounded amount more so the
// connection can be reused, and closes it. Read errors only shorten the
// excerpt: the status is what counts.
func readExcerpt(body io.ReadCloser) string {
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, MaxResponseExcerpt))
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	return strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// parseRetryAfter parses a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), relative to now. A date in the past yields 0. ok is
// false for an absent or unparsable value. Huge values saturate instead of
// overflowing.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
				return time.Duration(1<<63 - 1), true
			}
			return 0, false
		}
		if n > uint64((1<<63-1)/time.Second) {
			return time.Duration(1<<63 - 1), true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
