package hopper

import (
	"context"
	"log/slog"
	"time"

	"github.com/hopperq/hopper/internal/keys"
)

// Defaults of WorkerConfig.
const (
	// DefaultConcurrency is the number of jobs a worker runs at once.
	DefaultConcurrency = 10
	// DefaultLeaseDuration is how long a job stays claimed without a
	// heartbeat. A crashed worker's jobs are recovered about this long after
	// its last heartbeat (plus up to one PollInterval).
	DefaultLeaseDuration = 30 * time.Second
	// DefaultPollInterval is the longest an idle worker waits between
	// maintenance passes (promote due jobs, recover expired leases).
	DefaultPollInterval = 5 * time.Second
	// DefaultMaxStalls is how often a job may stall (its lease expire) before
	// it is dead-lettered instead of re-run.
	DefaultMaxStalls = 2
	// DefaultShutdownTimeout bounds the graceful drain when Run's ctx ends.
	DefaultShutdownTimeout = 30 * time.Second
	// MinLeaseDuration is the smallest WorkerConfig.LeaseDuration.
	MinLeaseDuration = 500 * time.Millisecond
	// DefaultPrefetch caps the jobs a single-queue worker claims ahead of
	// its free slots; see WorkerConfig.Prefetch.
	DefaultPrefetch = 100
)

// WorkerConfig configures a Worker. A nil *WorkerConfig means all defaults;
// NewWorker copies it, so changing it afterwards has no effect.
type WorkerConfig struct {
	// Concurrency is the number of jobs run at once, across all the worker's
	// queues. Defaults to DefaultConcurrency. At most 100,000.
	Concurrency int

	// Prefetch caps how many jobs a worker of one queue claims ahead of its
	// free slots, so that a slot finishing a short job starts the next at
	// once while completions and claims travel to Redis in batches. The
	// worker claims ahead only about as many jobs as its slots get through
	// in two round trips to Redis (it measures both), so jobs that take
	// longer than a round trip are hardly claimed ahead and other workers
	// are not starved of them. Jobs claimed ahead are leased (and counted
	// active) like running ones: heartbeats extend them, shutdown hands them
	// back without spending an attempt, and if the process dies they are
	// recovered after LeaseDuration and count a stall, like the jobs it was
	// running. Defaults to DefaultPrefetch; negative turns it off; at most
	// 100,000. Workers of several queues do not claim ahead.
	Prefetch int

	// Prefix is the key prefix; it must match the producers'. Defaults to
	// DefaultPrefix.
	Prefix string

	// StrictPriority, for a worker of several queues, always takes jobs from
	// the queue with the highest weight that has any. Defaults to false:
	// queues are served in proportion to their weights.
	StrictPriority bool

	// LeaseDuration is how long a fetched job stays claimed without a
	// heartbeat; see DefaultLeaseDuration. At least MinLeaseDuration.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often the worker extends the leases of all its
	// running jobs (one round trip per queue per interval). Defaults to
	// LeaseDuration/3; must be less than LeaseDuration.
	HeartbeatInterval time.Duration
	// PollInterval bounds the time between maintenance passes and the
	// blocking wait of an idle worker; whole seconds (rounded down), at least
	// 1s. Defaults to DefaultPollInterval.
	PollInterval time.Duration
	// MaxStalls is how many times a job's lease may expire before recovery
	// dead-letters it instead of re-running it (a "poison pill" that crashes
	// its worker). 1..1000. Defaults to DefaultMaxStalls.
	MaxStalls int
	// ShutdownTimeout bounds the graceful drain Run performs when its ctx
	// ends. Defaults to DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// StrictEviction makes Run refuse, with ErrEvictingRedis, to start
	// against a Redis whose maxmemory-policy may evict keys (anything but
	// noeviction). Without it, Run logs an error and starts.
	StrictEviction bool

	// DisableScheduler stops this worker from firing its queues' recurring
	// schedules. Defaults to false: every worker runs the scheduler, and the
	// schedules still fire each tick exactly once.
	DisableScheduler bool

	// Backoffs holds the named functions selected per job by Custom(name).
	Backoffs map[string]BackoffFunc
	// DefaultBackoff computes retry delays for jobs that set no Backoff
	// (neither per job nor by QueueConfig.DefaultBackoff). Defaults to
	// DefaultBackoff().Delay.
	DefaultBackoff BackoffFunc

	// OnCompleted is called after a job's completion is recorded.
	OnCompleted func(ctx context.Context, job *Job)
	// OnFailed is called after a failed attempt is recorded and the job is
	// scheduled for a retry (at job.DueAt).
	OnFailed func(ctx context.Context, job *Job, err error)
	// OnDead is called after a job is dead-lettered by this worker (attempts
	// exhausted, permanent error, no handler), and for jobs this worker's
	// recovery pass dead-lettered because they stalled more than MaxStalls
	// times (their own worker crashed or hung); for those, err wraps
	// ErrJobStalled and the hook runs on the maintenance goroutine.
	//
	// Hooks run on the job's slot goroutine after the Redis write, so they
	// see what is stored. A slot does not wait for a completion's or a
	// failed attempt's write before starting its next job: it runs
	// OnCompleted and OnFailed when the write's reply comes back, between
	// jobs (or, once it has no job left, after it freed its slot). OnDead
	// runs before the slot's next job.
	// A panicking hook is recovered and logged.
	OnDead func(ctx context.Context, job *Job, err error)

	// Observer, if set, sees every attempt start and end, e.g. to feed a
	// metrics library (hopper's core depends on none). Called on the job's
	// goroutine, like the hooks.
	Observer JobObserver

	// Logger receives the worker's logs. Defaults to slog.Default() at level
	// Warn and above; the library never writes to stdout.
	Logger *slog.Logger
}

func (c *WorkerConfig) withDefaults() (WorkerConfig, error) {
	var out WorkerConfig
	if c != nil {
		out = *c
	}
	if out.Concurrency == 0 {
		out.Concurrency = DefaultConcurrency
	}
	if out.Concurrency < 1 || out.Concurrency > 100000 {
		return out, invalid("WorkerConfig.Concurrency", out.Concurrency, "must be 1..100000")
	}
	if out.Prefetch == 0 {
		out.Prefetch = DefaultPrefetch
	}
	if out.Prefetch > 100000 {
		return out, invalid("WorkerConfig.Prefetch", out.Prefetch, "must be at most 100000 (negative: off)")
	}
	if out.Prefix == "" {
		out.Prefix = DefaultPrefix
	}
	if why := keys.CheckPrefix(out.Prefix); why != "" {
		return out, invalid("WorkerConfig.Prefix", out.Prefix, "%s", why)
	}
	if out.LeaseDuration == 0 {
		out.LeaseDuration = DefaultLeaseDuration
	}
	if out.LeaseDuration < MinLeaseDuration {
		return out, invalid("WorkerConfig.LeaseDuration", out.LeaseDuration, "must be at least %s", MinLeaseDuration)
	}
	if out.HeartbeatInterval == 0 {
		out.HeartbeatInterval = out.LeaseDuration / 3
	}
	if out.HeartbeatInterval < 10*time.Millisecond || out.HeartbeatInterval >= out.LeaseDuration {
		return out, invalid("WorkerConfig.HeartbeatInterval", out.HeartbeatInterval, "must be at least 10ms and less than LeaseDuration (%s)", out.LeaseDuration)
	}
	if out.PollInterval == 0 {
		out.PollInterval = DefaultPollInterval
	}
	if out.PollInterval < time.Second {
		return out, invalid("WorkerConfig.PollInterval", out.PollInterval, "must be at least 1s")
	}
	out.PollInterval = out.PollInterval.Truncate(time.Second)
	if out.MaxStalls == 0 {
		out.MaxStalls = DefaultMaxStalls
	}
	if out.MaxStalls < 1 || out.MaxStalls > 1000 {
		return out, invalid("WorkerConfig.MaxStalls", out.MaxStalls, "must be 1..1000")
	}
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = DefaultShutdownTimeout
	}
	if out.ShutdownTimeout < 0 {
		return out, invalid("WorkerConfig.ShutdownTimeout", out.ShutdownTimeout, "must not be negative")
	}
	for name, f := range out.Backoffs {
		if name == "" || f == nil {
			return out, invalid("WorkerConfig.Backoffs", name, "needs a non-empty name and a non-nil function")
		}
	}
	if out.Logger == nil {
		out.Logger = slog.New(warnOnly{slog.Default().Handler()})
	}
	return out, nil
}

// JobObserver is told of every attempt a worker runs. Implementations must
// be safe for concurrent use and fast: they run on the job's slot goroutine,
// like the hooks (see WorkerConfig.OnDead).
type JobObserver interface {
	// JobStarted is called just before the handler.
	JobStarted(ctx context.Context, job *Job)
	// JobFinished is called once for every JobStarted, after the attempt's
	// outcome was written (or could not be), with job.State the state it
	// left the job in.
	JobFinished(ctx context.Context, job *Job, outcome Outcome)
}

// Outcome describes how an attempt ended, for a JobObserver.
type Outcome struct {
	// State is the job's new state: completed, failed (will retry), delayed
	// (RetryAfter) or dead.
	State State
	// Duration is the handler's run time (up to the timeout for a handler
	// that overran it).
	Duration time.Duration
	// Err is the handler's error (nil on success), or the timeout.
	Err error
	// Recorded is false when the outcome could not be written: the lease was
	// lost (the job was recovered and may run again), the job was handed back
	// at shutdown, or Redis failed. When the lease was lost or the job handed
	// back before the handler returned, State is StateActive (the worker no
	// longer knows the job's state) and Err the handler's error, or
	// ErrLeaseLost if it returned nil.
	Recorded bool
	// RecordErr is the Redis error that kept the worker from learning
	// whether the outcome was written (Recorded is then false): the write
	// may have landed. nil when the outcome was written or refused.
	RecordErr error
}

// warnOnly filters a handler to Warn and above.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(a)} }
func (h warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{h.Handler.WithGroup(n)} }
