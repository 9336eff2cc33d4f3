package hopper

import (
	"math"
	"time"

	"github.com/hopperq/hopper/internal/wire"
)

// Defaults of the built-in backoffs.
const (
	// DefaultBackoffBase is the first retry delay of DefaultBackoff.
	DefaultBackoffBase = time.Second
	// DefaultBackoffFactor multiplies the delay after each failed attempt.
	DefaultBackoffFactor = 2.0
	// DefaultBackoffMax caps any exponential delay.
	DefaultBackoffMax = time.Hour
)

type backoffKind uint8

const (
	backoffExponential backoffKind = iota
	backoffFixed
	backoffCustom
)

// Backoff is a retry policy: how long to wait after a failed attempt before
// the next. It travels with the job through Redis, so it is data, not code:
// Exponential, Fixed, or Custom (a named BackoffFunc registered on the
// worker). The zero value is DefaultBackoff. Backoff values are immutable;
// the With methods return copies.
type Backoff struct {
	kind   backoffKind
	base   time.Duration
	factor float64
	max    time.Duration
	jitter float64
	name   string
}

// BackoffFunc computes the delay before the next attempt of a job whose
// attempt number attempt (1-based) just failed with err. Register one on
// WorkerConfig.Backoffs and select it per job with Custom(name), or set
// WorkerConfig.DefaultBackoff. A negative result is treated as 0.
type BackoffFunc func(attempt int, err error) time.Duration

// DefaultBackoff returns the backoff used when neither the job nor the queue
// sets one: Exponential(DefaultBackoffBase) with factor
// DefaultBackoffFactor, capped at DefaultBackoffMax, no jitter.
func DefaultBackoff() Backoff { return defaultBackoff() }

func defaultBackoff() Backoff { return Exponential(DefaultBackoffBase) }

// Exponential waits base after the first failure, then multiplies by the
// factor (default 2) after each further failure, up to the cap (default
// DefaultBackoffMax).
func Exponential(base time.Duration) Backoff {
	return Backoff{kind: backoffExponential, base: base, factor: DefaultBackoffFactor, max: DefaultBackoffMax}
}

// Fixed waits d after every failure.
func Fixed(d time.Duration) Backoff { return Backoff{kind: backoffFixed, base: d} }

// Custom selects the BackoffFunc registered under name in
// WorkerConfig.Backoffs of the worker that runs the job. A worker without
// that name uses its default backoff and logs a warning.
func Custom(name string) Backoff { return Backoff{kind: backoffCustom, name: name} }

// WithFactor returns b with the exponential growth factor f (>= 1).
func (b Backoff) WithFactor(f float64) Backoff { b.factor = f; return b }

// WithMax returns b with delays capped at d.
func (b Backoff) WithMax(d time.Duration) Backoff { b.max = d; return b }

// WithJitter returns b with each delay moved by up to ±frac of itself
// (0 <= frac <= 1), so that jobs that failed together do not retry together.
func (b Backoff) WithJitter(frac float64) Backoff { b.jitter = frac; return b }

// Name returns the registered name of a Custom backoff, else "".
func (b Backoff) Name() string { return b.name }

// Delay returns the wait after failed attempt number attempt (1-based) at
// time now. It is a pure function: jitter is derived from now and attempt,
// not from global randomness, so a given (now, attempt) always yields the
// same delay. The result never overflows: it is capped at the maximum (or,
// for Fixed, is the fixed delay). For Custom backoffs it returns 0: only a
// worker knows the function.
func (b Backoff) Delay(now time.Time, attempt int) time.Duration {
	if b == (Backoff{}) {
		b = defaultBackoff()
	}
	attempt = max(attempt, 1)
	var d time.Duration
	switch b.kind {
	case backoffFixed:
		d = b.base
	case backoffExponential:
		limit := b.max
		if limit <= 0 {
			limit = DefaultBackoffMax
		}
		f := float64(b.base) * math.Pow(b.factor, float64(attempt-1))
		if math.IsNaN(f) || f >= float64(limit) {
			d = limit
		} else {
			d = time.Duration(f)
		}
	default:
		return 0
	}
	if b.jitter > 0 && d > 0 {
		u := float64(splitmix64(uint64(now.UnixNano())^uint64(attempt)*0x9e3779b97f4a7c15)>>11) / (1 << 53) // [0,1)
		j := float64(d) * b.jitter * (2*u - 1)
		d += time.Duration(j)
		if b.kind == backoffExponential && b.max > 0 && d > b.max {
			d = b.max
		}
	}
	return max(d, 0)
}

// Next returns the time of the retry after failed attempt attempt at now.
func (b Backoff) Next(now time.Time, attempt int) time.Time { return now.Add(b.Delay(now, attempt)) }

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Validate reports whether b is usable (factor >= 1, no negative delays,
// jitter within [0, 1], a name for Custom); the error is a *ValidationError.
func (b Backoff) Validate() error { return b.validate("Backoff") }

func (b Backoff) validate(field string) error {
	if b == (Backoff{}) {
		return nil
	}
	switch b.kind {
	case backoffCustom:
		if b.name == "" {
			return invalid(field, "", "Custom backoff needs a name")
		}
		return nil
	case backoffExponential:
		if b.factor < 1 || math.IsInf(b.factor, 0) || math.IsNaN(b.factor) {
			return invalid(field+" factor", b.factor, "must be a finite number >= 1")
		}
		if b.max < 0 {
			return invalid(field+" max", b.max, "must not be negative")
		}
	}
	if b.base < 0 {
		return invalid(field+" delay", b.base, "must not be negative")
	}
	if b.jitter < 0 || b.jitter > 1 || math.IsNaN(b.jitter) {
		return invalid(field+" jitter", b.jitter, "must be within [0, 1]")
	}
	return nil
}

func (b Backoff) wire() wire.Backoff {
	if b == (Backoff{}) {
		b = defaultBackoff()
	}
	switch b.kind {
	case backoffFixed:
		return wire.Backoff{Type: "fixed", Base: b.base.Milliseconds(), Jitter: b.jitter}
	case backoffCustom:
		return wire.Backoff{Type: "custom", Name: b.name}
	}
	return wire.Backoff{Type: "exponential", Base: b.base.Milliseconds(), Factor: b.factor,
		Max: b.max.Milliseconds(), Jitter: b.jitter}
}

func backoffFromWire(w wire.Backoff) Backoff {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	switch w.Type {
	case "fixed":
		return Fixed(ms(w.Base)).WithJitter(w.Jitter)
	case "custom":
		return Custom(w.Name)
	}
	b := Exponential(ms(w.Base)).WithJitter(w.Jitter)
	if w.Factor >= 1 {
		b = b.WithFactor(w.Factor)
	}
	if w.Max > 0 {
		b = b.WithMax(ms(w.Max))
	}
	return b
}
