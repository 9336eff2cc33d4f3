package hopper

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel errors. Errors returned by hopper wrap one of these (or are one of
// the typed errors below) so callers can test them with errors.Is/As. Every
// message starts with "hopper:". redis.Nil never escapes the library.
var (
	// ErrJobNotFound: no job with that ID exists in the queue (or, for DLQ
	// calls, none in the dead-letter set).
	ErrJobNotFound = errors.New("hopper: job not found")

	// ErrJobActive: the call refuses to act on a job a worker is running.
	ErrJobActive = errors.New("hopper: job is active")

	// ErrLeaseLost: the acknowledgement, progress or heartbeat carried a
	// lease token that no longer holds the job. The job's lease expired and it
	// was recovered (it may run, or have run, elsewhere), or it was released
	// or removed. Nothing was changed.
	ErrLeaseLost = errors.New("hopper: lease lost: the job was recovered, released or removed and may run elsewhere")

	// ErrWorkerClosed: Run was called on a worker that has been shut down or
	// closed, or twice.
	ErrWorkerClosed = errors.New("hopper: worker closed")

	// ErrJobTimeout is the context cause a handler sees when its job's
	// Timeout elapses, and the error recorded for that attempt.
	ErrJobTimeout = errors.New("hopper: job timed out")

	// ErrEvictingRedis is returned by Worker.Run with
	// WorkerConfig.StrictEviction when Redis' maxmemory-policy may evict
	// keys, which would lose jobs silently.
	ErrEvictingRedis = errors.New("hopper: Redis may evict keys (maxmemory-policy is not noeviction)")

	// ErrRedisOOM is wrapped (beside Redis' own error) when Redis refused a
	// write because it reached maxmemory under the noeviction policy.
	// Nothing was written.
	ErrRedisOOM = errors.New("hopper: Redis is out of memory (maxmemory reached)")

	// ErrNotReplicated: with QueueConfig.WaitReplicas, fewer replicas than
	// asked acknowledged an add within QueueConfig.WaitTimeout. The jobs were
	// added on the primary (and are returned beside the error) but may be
	// lost if it fails before they replicate; adding them again with the same
	// IDs is safe.
	ErrNotReplicated = errors.New("hopper: add not acknowledged by enough replicas")

	// ErrJobStalled is wrapped by the error OnDead receives for a job
	// dead-lettered because its lease expired more than MaxStalls times.
	ErrJobStalled = errors.New("hopper: job stalled too often")

	// ErrWorkerShutdown is the context cause a handler sees when the worker's
	// shutdown budget ran out; its job was handed back to waiting.
	ErrWorkerShutdown = errors.New("hopper: worker shut down before the job finished")

	// ErrNoHandler: a Mux received a job name nothing is registered for. The
	// job is dead-lettered (retrying cannot help).
	ErrNoHandler = errors.New("hopper: no handler for job name")

	// ErrPayloadTooLarge: the payload exceeds QueueConfig.MaxPayloadBytes.
	// It is returned before any Redis command is sent.
	ErrPayloadTooLarge = errors.New("hopper: payload too large")

	// ErrInvalid is wrapped by every *ValidationError.
	ErrInvalid = errors.New("hopper: invalid argument")
)

// ValidationError reports a bad argument or configuration field. Nothing was
// sent to Redis. It matches ErrInvalid with errors.Is.
type ValidationError struct {
	Field  string // e.g. "queue name", "JobOptions.Attempts", "WorkerConfig.Concurrency"
	Value  string // the offending value, quoted and shortened
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("hopper: invalid %s %s: %s", e.Field, e.Value, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field string, value any, format string, args ...any) error {
	v := fmt.Sprintf("%q", fmt.Sprint(value))
	if len(v) > 80 {
		v = v[:77] + "..."
	}
	return &ValidationError{Field: field, Value: v, Reason: fmt.Sprintf(format, args...)}
}

// PermanentError marks a handler failure that must not be retried: the job
// goes straight to the dead-letter queue. Create it with Permanent.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "hopper: permanent failure"
	}
	return e.Err.Error()
}
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the job is dead-lettered at once, whatever attempts
// remain. Use it for failures retrying cannot fix (bad input, a 4xx answer).
func Permanent(err error) error { return &PermanentError{Err: err} }

// RetryAfterError asks for the job to run again after Delay without spending
// an attempt (e.g. an HTTP 429 with Retry-After). Create it with RetryAfter.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
	// Spend makes the retry spend an attempt, like an ordinary failure (see
	// FailAfter): once attempts run out the job is dead-lettered.
	Spend bool
}

func (e *RetryAfterError) Error() string {
	msg := "retry requested"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s (retry after %s)", msg, e.Delay)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns an error that reschedules the job d from now (0 or less:
// at once) as a delayed job, without counting the attempt toward
// JobOptions.Attempts. err (may be nil) is recorded as the job's last error.
// A job that always asks to retry never dead-letters: bound it yourself if
// that matters (e.g. by comparing Job.CreatedAt with a deadline).
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{Delay: d, Err: err} }

// FailAfter is a failed attempt whose retry waits d instead of the job's
// backoff (e.g. a 503 with Retry-After): it spends an attempt, and when the
// attempts are spent the job is dead-lettered as with any error.
func FailAfter(d time.Duration, err error) error {
	return &RetryAfterError{Delay: d, Err: err, Spend: true}
}

// PanicError is the failure recorded when a handler panics.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("hopper: handler panicked: %v", e.Value) }

func errPayload(size, limit int) error {
	return fmt.Errorf("%w: %d bytes, the limit is %d (QueueConfig.MaxPayloadBytes)", ErrPayloadTooLarge, size, limit)
}

// redisError marks errors Redis answered that callers may want to tell
// apart: OOM (maxmemory reached) wraps ErrRedisOOM as well as the original.
func redisError(err error) error {
	var re redis.Error
	if errors.As(err, &re) && strings.HasPrefix(re.Error(), "OOM ") {
		return fmt.Errorf("%w: %w", ErrRedisOOM, err)
	}
	return err
}
