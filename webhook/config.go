package webhook

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hopperq/hopper"
)

// Defaults of Config.
const (
	// DefaultJobName is the hopper job name of deliveries; register the
	// delivery handler on a hopper.Mux under it.
	DefaultJobName = "webhook:deliver"
	// DefaultAttempts is a delivery's attempt budget: the first try and 9
	// retries, which with DefaultBackoff span about 8.5 hours.
	DefaultAttempts = 10
	// DefaultMaxRetryAfter caps the wait a receiver can ask for with
	// Retry-After.
	DefaultMaxRetryAfter = time.Hour
	// DefaultRetryAfterWindow is how long after Send a delivery may keep
	// deferring on Retry-After without spending attempts.
	DefaultRetryAfterWindow = 24 * time.Hour
	// DefaultUserAgent is the User-Agent of delivery requests.
	DefaultUserAgent = "hopper-webhook/1"
	// DefaultDialTimeout and DefaultTLSHandshakeTimeout bound connection
	// setup in the default HTTP client; Endpoint.Timeout bounds the whole
	// request.
	DefaultDialTimeout         = 5 * time.Second
	DefaultTLSHandshakeTimeout = 5 * time.Second

	// MaxResponseExcerpt bounds the part of a response body kept in a
	// delivery's result or error (1 KiB).
	MaxResponseExcerpt = 1 << 10
	// MaxEventIDLen bounds Event.ID.
	MaxEventIDLen = 128
	// MinRetryAfter is the shortest deferral on Retry-After: "0" or a date
	// in the past waits this long, so that a receiver cannot make a delivery
	// spin.
	MinRetryAfter = time.Second
	// jobTimeoutMargin is added to the endpoint timeout for the delivery
	// job's hopper timeout: the endpoint lookup and the 410 disable are Redis
	// calls outside the request.
	jobTimeoutMargin = 15 * time.Second
	// drainLimit bounds what is read past the excerpt so that the connection
	// can be reused; beyond it the connection is closed instead.
	drainLimit = 64 << 10
)

// DefaultBackoff returns the retry delays of deliveries when Config.Backoff
// is nil: 1 minute, doubling after each failure, capped at 6 hours, ±10%
// jitter (so endpoints that failed together do not retry together).
func DefaultBackoff() hopper.Backoff {
	return hopper.Exponential(time.Minute).WithMax(6 * time.Hour).WithJitter(0.1)
}

// Config configures a Dispatcher. A nil *Config means all defaults; New
// copies it, so changing it afterwards has no effect. The producer (Send) and
// the workers (Handler) should use the same Config.
type Config struct {
	// JobName is the hopper job name of deliveries. Defaults to
	// DefaultJobName.
	JobName string

	// Attempts is each delivery's attempt budget (1 = no retry), spent by
	// failed attempts but not by deferrals on Retry-After. 1..hopper.MaxAttempts.
	// Defaults to DefaultAttempts.
	Attempts int
	// Backoff is the wait before each retry. The zero value means
	// DefaultBackoff().
	Backoff hopper.Backoff

	// MaxRetryAfter caps the wait a receiver can ask for with a Retry-After
	// header; a longer request waits this long. Defaults to
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// RetryAfterWindow bounds deferrals: a delivery older than this (since
	// Send) treats a Retry-After answer as an ordinary failed attempt, so a
	// receiver that always answers "later" still ends in the dead-letter
	// queue. Defaults to DefaultRetryAfterWindow.
	RetryAfterWindow time.Duration

	// DedupWindow, if positive, keeps re-sends of an event idempotent for
	// this long after the first Send even once its delivery jobs have been
	// trimmed from the completed set (hopper's JobOptions.Unique). It costs
	// one small Redis hash entry per delivery for the window. Defaults to 0:
	// a re-send is a no-op while the delivery job exists (see
	// hopper.QueueConfig.KeepCompleted and KeepDead).
	DedupWindow time.Duration

	// Client sends the requests. The dispatcher uses a copy whose
	// CheckRedirect refuses every redirect (a 3xx answer is a permanent
	// failure naming its Location), so an endpoint can never send a delivery
	// and its signature elsewhere. Its Timeout, if set, applies on top of
	// Endpoint.Timeout. Defaults to a client on a transport like
	// http.DefaultTransport with DefaultDialTimeout and
	// DefaultTLSHandshakeTimeout.
	Client *http.Client
	// UserAgent is the User-Agent header. Defaults to DefaultUserAgent.
	UserAgent string

	// Clock returns the current time, for signature timestamps and the
	// RetryAfterWindow. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives the dispatcher's logs (an endpoint disabled after a
	// 410 is logged at Warn). Defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.JobName == "" {
		out.JobName = DefaultJobName
	}
	if len(out.JobName) > 200 {
		return out, invalid("Config.JobName", out.JobName, "is longer than 200 bytes")
	}
	for i := 0; i < len(out.JobName); i++ {
		if b := out.JobName[i]; b <= ' ' || b > '~' {
			return out, invalid("Config.JobName", out.JobName, "allowed: printable ASCII without spaces")
		}
	}
	if out.Attempts == 0 {
		out.Attempts = DefaultAttempts
	}
	if out.Attempts < 1 || out.Attempts > hopper.MaxAttempts {
		return out, invalid("Config.Attempts", out.Attempts, "must be 1..%d", hopper.MaxAttempts)
	}
	if out.Backoff == (hopper.Backoff{}) {
		out.Backoff = DefaultBackoff()
	}
	if err := out.Backoff.Validate(); err != nil {
		return out, invalid("Config.Backoff", "", "%v", err)
	}
	if out.MaxRetryAfter == 0 {
		out.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if out.MaxRetryAfter < MinRetryAfter {
		return out, invalid("Config.MaxRetryAfter", out.MaxRetryAfter, "must be at least %s", MinRetryAfter)
	}
	if out.RetryAfterWindow == 0 {
		out.RetryAfterWindow = DefaultRetryAfterWindow
	}
	if out.RetryAfterWindow < 0 {
		return out, invalid("Config.RetryAfterWindow", out.RetryAfterWindow, "must not be negative")
	}
	if out.DedupWindow < 0 || (out.DedupWindow > 0 && out.DedupWindow < time.Millisecond) {
		return out, invalid("Config.DedupWindow", out.DedupWindow, "must be 0 (off) or at least 1ms")
	}
	if out.Client == nil {
		out.Client = defaultClient()
	} else {
		cl := *out.Client
		out.Client = &cl
	}
	out.Client.CheckRedirect = refuseRedirects
	if out.UserAgent == "" {
		out.UserAgent = DefaultUserAgent
	}
	if out.Clock == nil {
		out.Clock = time.Now
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out, nil
}

// refuseRedirects makes the client return the 3xx response itself.
func refuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	t.MaxIdleConnsPerHost = 8
	return &http.Client{Transport: t}
}
