package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"time"

	"github.com/hopperq/hopper"
)

// Defaults and bounds of Options and of the query parameters the pages take.
const (
	// DefaultTitle is the name shown in the header and the window title.
	DefaultTitle = "hopper"
	// DefaultRefreshInterval is how often open pages poll for fresh counts.
	DefaultRefreshInterval = 5 * time.Second
	// MinRefreshInterval bounds Options.RefreshInterval from below, so that
	// many open tabs cannot hammer Redis.
	MinRefreshInterval = time.Second
	// DefaultPageSize is the number of jobs a job list shows per page.
	DefaultPageSize = 20
	// MaxPageSize bounds the page size a request may ask for (?size=);
	// larger values are clamped.
	MaxPageSize = 100
	// MaxPage bounds the page number a request may ask for (?page=).
	MaxPage = 10000
	// MaxMinutes is the longest throughput window the overview shows
	// (?minutes=); hopper keeps per-minute counters for the last hour.
	MaxMinutes = 60
	// MinMinutes is the shortest throughput window (?minutes=).
	MinMinutes = 5
	// MaxCleanAge bounds the "older than" age of a clean action.
	MaxCleanAge = 10 * 365 * 24 * time.Hour
	// MaxPayloadShown bounds the bytes of a payload or result a job page
	// renders; the rest is cut with a note.
	MaxPayloadShown = 256 << 10
	// MaxQueues bounds the queues the overview reads and shows.
	MaxQueues = 500
)

// Options configures the dashboard handler. A nil *Options is refused:
// authentication must be decided explicitly (Auth or Unauthenticated).
// New copies the struct, so changing it afterwards has no effect.
type Options struct {
	// Prefix is the hopper key prefix of the queues shown; it must match
	// their QueueConfig.Prefix. Defaults to hopper.DefaultPrefix.
	Prefix string

	// Queues is a fixed list of the queues to show; requests for other
	// queues answer 404. Defaults to every queue in the prefix's registry
	// (hopper.ListQueues), read on every request.
	Queues []string

	// Auth decides whether a request may use the dashboard; it runs before
	// every route, assets included. BasicAuth builds one. Required unless
	// Unauthenticated is set. It is called from many goroutines at once.
	Auth func(r *http.Request) bool

	// Unauthenticated explicitly serves the dashboard to anyone who can
	// reach it (e.g. behind an authenticating reverse proxy, or on
	// localhost). It may not be combined with Auth. Defaults to false.
	Unauthenticated bool

	// Unauthorized answers requests Auth refused. Defaults to a 401 with a
	// "WWW-Authenticate: Basic" challenge, which makes browsers prompt for
	// the BasicAuth credentials. Set it to redirect to a login page instead.
	Unauthorized http.Handler

	// ReadOnly hides every action and answers every mutation with 403.
	// Defaults to false.
	ReadOnly bool

	// TrustedOrigins are origins ("https://admin.example.com") allowed to
	// POST actions although they differ from the request's Host, e.g. when a
	// reverse proxy rewrites the Host header. Requests are otherwise
	// checked by http.CrossOriginProtection. Defaults to none.
	TrustedOrigins []string

	// Title is shown in the header and the window title. Defaults to
	// DefaultTitle.
	Title string

	// RefreshInterval is how often the pages poll the JSON endpoints for
	// fresh counts. Defaults to DefaultRefreshInterval; at least
	// MinRefreshInterval. A negative value turns live updates off.
	RefreshInterval time.Duration

	// PageSize is the default number of jobs per page (a request may ask
	// for another with ?size=, clamped to 1..MaxPageSize). Defaults to
	// DefaultPageSize.
	PageSize int

	// Logger receives errors the dashboard hides from its responses (Redis
	// failures, panics). Defaults to slog.Default().
	Logger *slog.Logger
}

// BasicAuth returns an Options.Auth hook that accepts requests carrying
// HTTP basic credentials user and password. The comparison takes the same
// time whatever the input (both sides are hashed, then compared in constant
// time), so it reveals neither the credentials nor their lengths.
func BasicAuth(user, password string) func(*http.Request) bool {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		// Evaluate both comparisons, always: no short circuit on the user.
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		return ok && userOK&passOK == 1
	}
}

// config is Options with defaults applied.
type config struct {
	Options
	queueSet map[string]bool // nil: use the registry
}

func invalid(field, value, reason string) error {
	if len(value) > 80 {
		value = value[:77] + "..."
	}
	return &hopper.ValidationError{Field: field, Value: `"` + value + `"`, Reason: reason}
}

// newConfig validates opts and applies the defaults to a copy.
func newConfig(opts *Options) (*config, error) {
	if opts == nil {
		return nil, invalid("Options", "nil", "set Auth (e.g. dashboard.BasicAuth) or Unauthenticated: true")
	}
	c := &config{Options: *opts}
	c.Queues = append([]string(nil), opts.Queues...)
	c.TrustedOrigins = append([]string(nil), opts.TrustedOrigins...)
	switch {
	case c.Auth == nil && !c.Unauthenticated:
		return nil, invalid("Options.Auth", "nil", "required unless Options.Unauthenticated is set")
	case c.Auth != nil && c.Unauthenticated:
		return nil, invalid("Options.Unauthenticated", "true", "may not be combined with Options.Auth")
	}
	if c.Prefix == "" {
		c.Prefix = hopper.DefaultPrefix
	}
	if c.Title == "" {
		c.Title = DefaultTitle
	}
	switch {
	case c.RefreshInterval == 0:
		c.RefreshInterval = DefaultRefreshInterval
	case c.RefreshInterval > 0 && c.RefreshInterval < MinRefreshInterval:
		return nil, invalid("Options.RefreshInterval", c.RefreshInterval.String(), "must be at least "+MinRefreshInterval.String()+" (negative: off)")
	}
	switch {
	case c.PageSize == 0:
		c.PageSize = DefaultPageSize
	case c.PageSize < 0 || c.PageSize > MaxPageSize:
		return nil, invalid("Options.PageSize", itoa(c.PageSize), "must be within 1..100")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Unauthorized == nil {
		c.Unauthorized = http.HandlerFunc(challenge)
	}
	if len(c.Queues) > 0 {
		c.queueSet = make(map[string]bool, len(c.Queues))
		for _, name := range c.Queues {
			c.queueSet[name] = true
		}
	}
	return c, nil
}

// challenge is the default Unauthorized handler.
func challenge(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("WWW-Authenticate", `Basic realm="hopper dashboard", charset="UTF-8"`)
	http.Error(w, "401 unauthorized", http.StatusUnauthorized)
}
