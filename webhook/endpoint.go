package webhook

import (
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Limits and defaults of an Endpoint.
const (
	// DefaultEndpointTimeout bounds one delivery request (connect, send,
	// response headers and the read of the response excerpt) when
	// Endpoint.Timeout is zero.
	DefaultEndpointTimeout = 10 * time.Second
	// MaxEndpointTimeout is the largest Endpoint.Timeout.
	MaxEndpointTimeout = 5 * time.Minute
	// MaxEndpointIDLen bounds Endpoint.ID.
	MaxEndpointIDLen = 64
	// MaxEventTypeLen bounds an event type and an event pattern.
	MaxEventTypeLen = 100
	// MaxEventsPerEndpoint bounds Endpoint.Events.
	MaxEventsPerEndpoint = 100
	// MaxSecretLen bounds Endpoint.Secret.
	MaxSecretLen = 1024
	// MaxURLLen bounds Endpoint.URL.
	MaxURLLen = 2048
)

// Endpoint is a receiver of webhooks: a URL subscribed to event types. Stores
// hand out copies; changing one has no effect on the store until Put.
type Endpoint struct {
	// ID names the endpoint: 1-64 bytes of ASCII letters, digits, '-', '_'
	// and '.'. It is part of every delivery's job ID.
	ID string
	// URL receives the deliveries: an absolute http or https URL.
	URL string
	// Secret is the HMAC-SHA256 key the deliveries are signed with (its
	// bytes as given; see the package documentation). Required; 1-1024
	// bytes. NewSecret makes a good one.
	Secret string
	// Events are the event types the endpoint subscribes to: exact types
	// ("task:created"), prefixes ending in a "*" segment ("task:*" matches
	// "task:created" and "task:comment:added", not "task"), or "*" for every
	// event. At least one, at most MaxEventsPerEndpoint. See Match.
	Events []string
	// Timeout bounds each delivery request. 0 means
	// DefaultEndpointTimeout; at most MaxEndpointTimeout.
	Timeout time.Duration
	// Headers are sent with every delivery, e.g. a static token a receiver's
	// gateway wants. Names are HTTP tokens; Content-Type, Content-Length,
	// Host, User-Agent, Connection, Transfer-Encoding and every "Hopper-*"
	// name are reserved. Values must not contain CR, LF or NUL.
	Headers map[string]string

	// Disabled endpoints receive nothing: Send skips them and their pending
	// deliveries complete without a request. Stores set it through Disable
	// (the delivery handler does, on a 410 Gone); Put with Disabled false
	// enables the endpoint again.
	Disabled bool
	// DisabledReason says why the endpoint was disabled.
	DisabledReason string
	// DisabledAt is when it was disabled (zero if it is not).
	DisabledAt time.Time
}

func (e Endpoint) timeout() time.Duration {
	if e.Timeout == 0 {
		return DefaultEndpointTimeout
	}
	return e.Timeout
}

// clone returns a deep copy of e.
func (e Endpoint) clone() Endpoint {
	e.Events = slices.Clone(e.Events)
	e.Headers = maps.Clone(e.Headers)
	return e
}

// redactedURL is e.URL with any password replaced, for errors and results.
func (e Endpoint) redactedURL() string {
	u, err := url.Parse(e.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// reservedHeaders may not be set through Endpoint.Headers (canonical form);
// every "Hopper-*" name is reserved too.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "User-Agent": true,
	"Connection": true, "Transfer-Encoding": true,
}

// Validate reports the first problem with e as a *ValidationError (which
// matches ErrInvalid), or nil. Stores call it in Put; the dispatcher calls it
// on every endpoint a store returns, so a custom store cannot smuggle in a
// bad URL.
func (e Endpoint) Validate() error {
	if why := checkEndpointID(e.ID); why != "" {
		return invalid("Endpoint.ID", e.ID, "%s", why)
	}
	if err := checkURL(e.URL); err != nil {
		return err
	}
	if e.Secret == "" {
		return invalid("Endpoint.Secret", "", "is empty; every endpoint needs a signing secret (see NewSecret)")
	}
	if len(e.Secret) > MaxSecretLen {
		return invalid("Endpoint.Secret", "(hidden)", "is %d bytes, longer than %d", len(e.Secret), MaxSecretLen)
	}
	if len(e.Events) == 0 {
		return invalid("Endpoint.Events", "[]", "an endpoint needs at least one event type or pattern (\"*\" for all)")
	}
	if len(e.Events) > MaxEventsPerEndpoint {
		return invalid("Endpoint.Events", len(e.Events), "at most %d patterns", MaxEventsPerEndpoint)
	}
	for _, p := range e.Events {
		if why := checkPattern(p); why != "" {
			return invalid("Endpoint.Events", p, "%s", why)
		}
	}
	if e.Timeout < 0 || e.Timeout > MaxEndpointTimeout || (e.Timeout > 0 && e.Timeout < time.Millisecond) {
		return invalid("Endpoint.Timeout", e.Timeout, "must be 0 (default %s) or 1ms..%s", DefaultEndpointTimeout, MaxEndpointTimeout)
	}
	for k, v := range e.Headers {
		if !isToken(k) {
			return invalid("Endpoint.Headers", k, "is not a valid header name")
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if reservedHeaders[ck] || strings.HasPrefix(ck, "Hopper-") {
			return invalid("Endpoint.Headers", k, "is reserved: the dispatcher sets it")
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return invalid("Endpoint.Headers", k, "value contains CR, LF or NUL")
		}
	}
	return nil
}

func checkURL(s string) error {
	if s == "" {
		return invalid("Endpoint.URL", s, "is empty")
	}
	if len(s) > MaxURLLen {
		return invalid("Endpoint.URL", s, "is %d bytes, longer than %d", len(s), MaxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid("Endpoint.URL", s, "does not parse: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("Endpoint.URL", u.Redacted(), "must be an absolute http or https URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return invalid("Endpoint.URL", u.Redacted(), "has no host")
	}
	return nil
}

// checkEndpointID reports why s cannot be an endpoint ID, or "". ':' is
// excluded because the delivery job ID is "wh:<event id>:<endpoint id>" and
// must split unambiguously.
func checkEndpointID(s string) string { return checkChars(s, MaxEndpointIDLen, "-_.") }

// checkEventID: the job-ID alphabet, so that "wh:<event>:<endpoint>" is a
// valid hopper job ID.
func checkEventID(s string) string { return checkChars(s, MaxEventIDLen, "-_.:@/+=") }

func checkChars(s string, maxLen int, extra string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > maxLen {
		return fmt.Sprintf("is %d bytes, longer than %d", len(s), maxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && strings.IndexByte(extra, c) < 0 {
			return fmt.Sprintf("has byte %q at %d; allowed: ASCII letters, digits and %q", c, i, extra)
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isSep(c byte) bool { return c == ':' || c == '.' }

// isToken reports whether s is an RFC 9110 token (a valid header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// checkType reports why s cannot be an event type, or "". Event types are
// 1-100 bytes of ASCII letters, digits, '-' and '_', in segments separated by
// ':' or '.' ("task:created", "invoice.paid"); no segment is empty.
func checkType(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > MaxEventTypeLen {
		return fmt.Sprintf("is %d bytes, longer than %d", len(s), MaxEventTypeLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c) || c == '-' || c == '_':
		case isSep(c):
			if i == 0 || i == len(s)-1 || isSep(s[i-1]) {
				return fmt.Sprintf("has an empty segment at %d; segments are separated by ':' or '.'", i)
			}
		case c == '*':
			return "contains '*': wildcards belong in endpoint subscriptions, not in event types"
		default:
			return fmt.Sprintf("has byte %q at %d; allowed: ASCII letters, digits, '-', '_' and the separators ':' and '.'", c, i)
		}
	}
	return ""
}

// checkPattern reports why s cannot be a subscription pattern, or "".
func checkPattern(s string) string {
	if s == "*" {
		return ""
	}
	if len(s) >= 2 && s[len(s)-1] == '*' {
		if !isSep(s[len(s)-2]) {
			return "a wildcard must be a whole last segment, as in \"task:*\" or \"*\""
		}
		if why := checkType(s[:len(s)-2]); why != "" {
			return why
		}
		return ""
	}
	if strings.Contains(s, "*") {
		return "a wildcard must be a whole last segment, as in \"task:*\" or \"*\""
	}
	return checkType(s)
}

// Match reports whether the subscription pattern matches event type typ:
// "*" matches every type; a pattern whose last segment is "*" ("task:*",
// "billing.invoice.*") matches every type that starts with the part before
// the "*", separator included, and has at least one more byte ("task:*"
// matches "task:created" and "task:comment:added", not "task" nor
// "tasks:x"); any other pattern matches only the identical type. Invalid
// patterns match nothing. Pure function; safe for concurrent use.
func Match(pattern, typ string) bool {
	if pattern == "*" {
		return true
	}
	if n := len(pattern); n >= 2 && pattern[n-1] == '*' {
		if !isSep(pattern[n-2]) || strings.Contains(pattern[:n-1], "*") {
			return false
		}
		prefix := pattern[:n-1]
		return len(typ) > len(prefix) && strings.HasPrefix(typ, prefix)
	}
	return pattern != "" && !strings.Contains(pattern, "*") && pattern == typ
}

// matchAny reports whether any of patterns matches typ.
func matchAny(patterns []string, typ string) bool {
	for _, p := range patterns {
		if Match(p, typ) {
			return true
		}
	}
	return false
}

// candidatePatterns returns every pattern that can match typ: "*", typ
// itself, and typ cut after each separator followed by "*". A store indexed
// by pattern looks up exactly these, so a lookup costs O(segments), not
// O(endpoints).
func candidatePatterns(typ string) []string {
	out := []string{"*", typ}
	for i := 0; i < len(typ); i++ {
		if isSep(typ[i]) {
			out = append(out, typ[:i+1]+"*")
		}
	}
	return out
}
