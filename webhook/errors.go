package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hopperq/hopper"
)

// Sentinel errors. Every message starts with "webhook:".
var (
	// ErrInvalid is matched by every *ValidationError, as is
	// hopper.ErrInvalid, so callers can test either with errors.Is.
	ErrInvalid = errors.New("webhook: invalid argument")

	// ErrEndpointNotFound: the store holds no endpoint with that ID.
	ErrEndpointNotFound = errors.New("webhook: endpoint not found")

	// ErrMissingSignature: the request carries no Hopper-Signature header,
	// or one without a timestamp or without a v1 signature.
	ErrMissingSignature = errors.New("webhook: missing signature")

	// ErrInvalidSignature: no v1 signature in the header matches the body
	// and timestamp under the secret (wrong secret, tampered body or
	// timestamp), or the header is malformed.
	ErrInvalidSignature = errors.New("webhook: invalid signature")

	// ErrStaleTimestamp: the signature is genuine but its timestamp is
	// further from now than the tolerance, in the past (a replay or a very
	// late delivery) or in the future (clock skew).
	ErrStaleTimestamp = errors.New("webhook: signature timestamp outside the tolerance")
)

// ValidationError reports a bad argument, endpoint or configuration field.
// Nothing was sent to Redis or over the network. It matches ErrInvalid and
// hopper.ErrInvalid with errors.Is.
type ValidationError struct {
	Field  string // e.g. "Event.Type", "Endpoint.URL", "Config.Attempts"
	Value  string // the offending value, quoted and shortened
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("webhook: invalid %s %s: %s", e.Field, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalid or hopper.ErrInvalid.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalid || target == hopper.ErrInvalid
}

func invalid(field string, value any, format string, args ...any) error {
	v := fmt.Sprintf("%q", fmt.Sprint(value))
	if len(v) > 80 {
		v = v[:77] + "..."
	}
	return &ValidationError{Field: field, Value: v, Reason: fmt.Sprintf(format, args...)}
}

// StatusError is the failure of a delivery whose receiver answered with a
// status other than 2xx and 410. The delivery handler returns it wrapped in
// hopper.Permanent (3xx and most 4xx), in hopper.RetryAfter (429 and 5xx
// with a Retry-After header), or bare (other retryable statuses), so worker
// hooks (OnFailed, OnDead) can inspect it with errors.As. Its message, which
// hopper records as the job's last error and dead reason, names the
// endpoint, the status and the start of the response body.
type StatusError struct {
	Endpoint string // endpoint ID
	URL      string // endpoint URL, password redacted
	Status   int    // HTTP status code
	Body     string // the first MaxResponseExcerpt bytes of the response body
	// Location is the Location header of a 3xx answer (never followed).
	Location string
	// RetryAfter is the wait the receiver asked for with Retry-After, after
	// capping (0 if it sent none).
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook: endpoint %s (%s) answered %d %s", e.Endpoint, e.URL, e.Status, http.StatusText(e.Status))
	if e.Location != "" {
		fmt.Fprintf(&b, " redirecting to %s (redirects are not followed: update the endpoint URL)", e.Location)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return b.String()
}
