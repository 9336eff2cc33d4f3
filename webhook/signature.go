package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery request. See the package documentation.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	HeaderSignature = "Hopper-Signature"
	// HeaderDeliveryID carries the delivery's ID (its hopper job ID), the
	// same on every attempt: receivers deduplicate on it.
	HeaderDeliveryID = "Hopper-Delivery-Id"
	// HeaderEventID carries Event.ID.
	HeaderEventID = "Hopper-Event-Id"
	// HeaderEvent carries Event.Type.
	HeaderEvent = "Hopper-Event"
	// HeaderAttempt carries the attempt number (1 for the first try;
	// deferrals on Retry-After do not count, so a number may repeat).
	HeaderAttempt = "Hopper-Attempt"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock, in either direction, when Verify is given 0.
const DefaultTolerance = 5 * time.Minute

// MaxVerifiedBody bounds the body Middleware reads (10 MiB).
const MaxVerifiedBody = 10 << 20

// Sign returns the Hopper-Signature header value for body sent at t under
// secret: "t=<t as unix seconds>,v1=<lowercase hex of
// HMAC-SHA256(secret, "<t as unix seconds>." + body)>". The dispatcher calls
// it for every attempt with the time of the attempt; tests of receivers can
// call it to build requests.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a delivery as a receiver gets it: header is the request's
// header, body its raw body (read it whole before decoding), secret the
// endpoint's secret. It returns nil if the Hopper-Signature header holds a v1
// signature of body and the header's timestamp under secret, and that
// timestamp is within tolerance of now (0 means DefaultTolerance).
//
// The header may hold several v1 signatures (e.g. during a secret rotation);
// one match suffices. Unknown schemes (v2=...) are ignored. Signatures are
// compared in constant time. The signature is checked before the timestamp,
// so ErrStaleTimestamp always concerns an authentic request (a replay or a
// late retry).
//
// Errors: ErrMissingSignature, ErrInvalidSignature, ErrStaleTimestamp (all
// wrapped with detail), or a *ValidationError for an empty secret.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if secret == "" {
		return invalid("secret", "", "is empty")
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	raw := header.Get(HeaderSignature)
	if raw == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, HeaderSignature)
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(raw, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed %s header", ErrInvalidSignature, HeaderSignature)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: v1 is not %d bytes of hex", ErrInvalidSignature, sha256.Size)
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" {
		return fmt.Errorf("%w: %s has no timestamp (t=)", ErrMissingSignature, HeaderSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: %s has no v1 signature", ErrMissingSignature, HeaderSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not a unix time", ErrInvalidSignature, ts)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		// Check every signature, not just until the first match, so the time
		// taken does not tell which one matched.
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("%w: no signature matches the body under this secret", ErrInvalidSignature)
	}
	skew := now.Sub(time.Unix(unix, 0))
	switch {
	case skew > tolerance:
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrStaleTimestamp, skew.Truncate(time.Second), tolerance)
	case -skew > tolerance:
		return fmt.Errorf("%w: signed %s in the future, tolerance %s", ErrStaleTimestamp, (-skew).Truncate(time.Second), tolerance)
	}
	return nil
}

// Middleware returns a handler that verifies each request with Verify (the
// receiver's clock, DefaultTolerance) before calling next with the body
// restored, so next reads it as usual. A request that fails verification is
// answered 401 with the reason (which tells the sender, whose delivery is
// then dead-lettered, what is wrong); a body over MaxVerifiedBody is answered
// 413. Safe for concurrent use.
func Middleware(secret string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxVerifiedBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "webhook: body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "webhook: reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := Verify(secret, r.Header, body, 0, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// NewSecret returns a new random endpoint secret: "whsec_" and 32 bytes from
// crypto/rand in hex. Receivers use the whole string as the HMAC key.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return "whsec_" + hex.EncodeToString(b[:])
}
