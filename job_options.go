package hopper

import (
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/wire"
)

// Defaults and bounds of job options. A zero field in JobOptions means the
// queue's default (QueueConfig), whose zero means these.
const (
	// DefaultAttempts is a job's attempt budget: the first run and up to 24
	// retries, which with DefaultBackoff spans about 14 hours.
	DefaultAttempts = 25
	// MaxAttempts bounds JobOptions.Attempts. There is no "infinite".
	MaxAttempts = 1000
	// DefaultTimeout bounds one attempt of a job. Its handler's ctx ends then,
	// and the attempt fails with ErrJobTimeout.
	DefaultTimeout = 30 * time.Minute
	// MaxPriority is the largest JobOptions.Priority.
	MaxPriority = 1 << 21

	// DefaultKeepCompletedCount and DefaultKeepCompletedAge bound completed
	// jobs kept per queue: the newest 1,000 (trimmed in chunks of up to 100),
	// for at most 24 hours.
	DefaultKeepCompletedCount = 1000
	DefaultKeepCompletedAge   = 24 * time.Hour
	// DefaultKeepDeadCount and DefaultKeepDeadAge bound the dead-letter queue:
	// the newest 10,000, for at most 180 days.
	DefaultKeepDeadCount = 10000
	DefaultKeepDeadAge   = 180 * 24 * time.Hour
)

// JobOptions are per-job options for Queue.Add and AddBulk. A nil
// *JobOptions, and every zero field, means the default.
type JobOptions struct {
	// ID makes the add idempotent: while a job with this ID exists in the
	// queue, adding it again adds nothing and returns the existing job with
	// Duplicate set (also under concurrent adds). Allowed: 1-200 bytes of
	// ASCII letters, digits and - _ . : @ / + =. Defaults to a generated,
	// unique ID. (An add whose stored job is byte-identical to what it sends
	// — its own re-run after a lost reply — is reported as added.)
	ID string

	// Delay makes the job wait this long before it is ready. Must not be
	// negative. At most one of Delay and RunAt may be set.
	Delay time.Duration
	// RunAt makes the job ready at this time (a time in the past: at once).
	RunAt time.Time

	// Priority orders ready jobs. 0 (the default) is "no priority": such jobs
	// run first, in FIFO order. 1..MaxPriority run after them, lowest number
	// first, FIFO within a number (BullMQ's convention).
	Priority int

	// Attempts is how many times the job may run before it is dead-lettered:
	// 1 means no retry. 1..MaxAttempts. Defaults to QueueConfig.DefaultAttempts.
	Attempts int
	// Backoff is the wait before each retry. The zero value means
	// QueueConfig.DefaultBackoff, else the worker's default.
	Backoff Backoff
	// Timeout bounds one attempt. Defaults to QueueConfig.DefaultTimeout.
	Timeout time.Duration

	// KeepCompleted bounds how many completed jobs of the queue are kept, and
	// for how long, applied when this job completes. &Retention{} removes the
	// job as soon as it completes. Defaults to QueueConfig.KeepCompleted.
	KeepCompleted *Retention
	// KeepDead is KeepCompleted for the dead-letter queue.
	KeepDead *Retention

	// Unique deduplicates by a key over a time window: while a job added
	// with the same Unique.Key within the last Unique.Window is remembered,
	// adding another adds nothing and returns that job with Duplicate set
	// (if it no longer exists, a Job with only its ID and an empty State).
	// Unlike ID, which dedupes while the job exists, Unique holds for the
	// window even after the job completed or was removed. Checked atomically
	// with the add, also within AddBulk.
	Unique *Unique

	// Metadata is free-form data stored with the job (e.g. a team or user
	// ID) and returned on Job.Metadata. At most 64 entries; keys 1-100 bytes,
	// values up to 1,000 bytes.
	Metadata map[string]string
}

// Unique is a time-window deduplication rule; see JobOptions.Unique.
type Unique struct {
	// Key identifies "the same job", e.g. "sync-crm:team-42". Same allow-list
	// as job IDs.
	Key string
	// Window is how long the key is remembered after the add; > 0.
	Window time.Duration
}

// Retention bounds a set of finished jobs (BullMQ's removeOnComplete /
// removeOnFail). When jobs finish, those older than Age are deleted, and the
// oldest beyond Count once the excess reaches 10% of Count (at most 100):
// trimming in chunks keeps most acknowledgements cheap, so the set holds up
// to Count + min(Count/10, 100) jobs. Each call deletes at most 100 jobs
// more than it added, so trimming never stalls Redis. Count 0 means no count
// bound and Age 0 no age bound; both 0 means "do not keep": the job is
// deleted as soon as it finishes.
type Retention struct {
	Count int
	Age   time.Duration
}

func (r Retention) wire() wire.Retention {
	return wire.Retention{Count: r.Count, Age: r.Age.Milliseconds()}
}

func checkRetention(field string, r *Retention) error {
	if r == nil {
		return nil
	}
	if r.Count < 0 {
		return invalid(field+".Count", r.Count, "must not be negative")
	}
	if r.Age < 0 {
		return invalid(field+".Age", r.Age, "must not be negative")
	}
	if r.Age > 0 && r.Age < time.Millisecond {
		return invalid(field+".Age", r.Age, "must be at least 1ms")
	}
	return nil
}

// NewJob is one job for Queue.AddBulk.
type NewJob struct {
	Name    string
	Payload []byte
	Options *JobOptions
}

// resolvedJob is a validated job ready for the add script.
type resolvedJob struct {
	id       string
	autoID   bool
	name     string
	payload  []byte
	header   wire.Header
	delayMs  int64
	runAtMs  int64
	priority int
	unique   string
	windowMs int64
}

// resolve validates one job against the queue's config and fills defaults.
// It sends nothing to Redis.
func (q *Queue) resolve(name string, payload []byte, o *JobOptions, nowMs int64) (resolvedJob, error) {
	if o == nil {
		o = &JobOptions{}
	}
	if why := keys.CheckJobName(name); why != "" {
		return resolvedJob{}, invalid("job name", name, "%s", why)
	}
	if len(payload) > q.cfg.MaxPayloadBytes {
		return resolvedJob{}, errPayload(len(payload), q.cfg.MaxPayloadBytes)
	}
	r := resolvedJob{name: name, payload: payload, id: o.ID}
	if r.id == "" {
		r.id, r.autoID = q.ids.next(), true
	} else if why := keys.CheckJobID(r.id); why != "" {
		return resolvedJob{}, invalid("JobOptions.ID", r.id, "%s", why)
	}
	h := wire.Header{Name: name, Created: nowMs}
	switch {
	case o.Delay < 0:
		return resolvedJob{}, invalid("JobOptions.Delay", o.Delay, "must not be negative")
	case o.Delay > 0 && !o.RunAt.IsZero():
		return resolvedJob{}, invalid("JobOptions.RunAt", o.RunAt, "cannot be combined with Delay")
	case o.Delay > 0:
		r.delayMs = max(o.Delay.Milliseconds(), 1)
	case !o.RunAt.IsZero():
		r.runAtMs = max(o.RunAt.UnixMilli(), 1)
	}
	if o.Priority < 0 || o.Priority > MaxPriority {
		return resolvedJob{}, invalid("JobOptions.Priority", o.Priority, "must be 0 (none) or 1..%d", MaxPriority)
	}
	r.priority, h.Priority = o.Priority, o.Priority

	attempts := o.Attempts
	if attempts == 0 {
		attempts = q.cfg.DefaultAttempts
	}
	if attempts < 1 || attempts > MaxAttempts {
		return resolvedJob{}, invalid("JobOptions.Attempts", attempts, "must be 1..%d (there is no unlimited)", MaxAttempts)
	}
	if attempts != DefaultAttempts {
		h.Attempts = attempts
	}
	b := o.Backoff
	if b == (Backoff{}) {
		b = q.cfg.DefaultBackoff
	}
	if b != (Backoff{}) {
		if err := b.validate("JobOptions.Backoff"); err != nil {
			return resolvedJob{}, err
		}
		w := b.wire()
		h.Backoff = &w
	}
	timeout := o.Timeout
	if timeout < 0 {
		return resolvedJob{}, invalid("JobOptions.Timeout", timeout, "must not be negative")
	}
	if timeout == 0 {
		timeout = q.cfg.DefaultTimeout
	}
	if timeout < time.Millisecond {
		return resolvedJob{}, invalid("JobOptions.Timeout", timeout, "must be at least 1ms")
	}
	if timeout != DefaultTimeout {
		h.Timeout = timeout.Milliseconds()
	}
	for _, k := range []struct {
		field    string
		opt, def *Retention
		dst      **wire.Retention
		defWire  wire.Retention
	}{
		{"JobOptions.KeepCompleted", o.KeepCompleted, q.cfg.KeepCompleted, &h.KeepCompleted,
			wire.Retention{Count: DefaultKeepCompletedCount, Age: DefaultKeepCompletedAge.Milliseconds()}},
		{"JobOptions.KeepDead", o.KeepDead, q.cfg.KeepDead, &h.KeepDead,
			wire.Retention{Count: DefaultKeepDeadCount, Age: DefaultKeepDeadAge.Milliseconds()}},
	} {
		if err := checkRetention(k.field, k.opt); err != nil {
			return resolvedJob{}, err
		}
		rt := k.opt
		if rt == nil {
			rt = k.def
		}
		if rt != nil {
			if w := rt.wire(); w != k.defWire {
				*k.dst = &w
			}
		}
	}
	if u := o.Unique; u != nil {
		if why := keys.CheckJobID(u.Key); why != "" {
			return resolvedJob{}, invalid("JobOptions.Unique.Key", u.Key, "%s", why)
		}
		if u.Window < time.Millisecond {
			return resolvedJob{}, invalid("JobOptions.Unique.Window", u.Window, "must be at least 1ms")
		}
		r.unique, r.windowMs = u.Key, u.Window.Milliseconds()
	}
	if len(o.Metadata) > maxMetadata {
		return resolvedJob{}, invalid("JobOptions.Metadata", len(o.Metadata), "at most %d entries", maxMetadata)
	}
	for k, v := range o.Metadata {
		if k == "" || len(k) > 100 || len(v) > 1000 {
			return resolvedJob{}, invalid("JobOptions.Metadata", k, "keys must be 1-100 bytes and values at most 1000 bytes")
		}
	}
	if len(o.Metadata) > 0 {
		h.Meta = o.Metadata
	}
	r.header = h
	return r, nil
}

const maxMetadata = 64
