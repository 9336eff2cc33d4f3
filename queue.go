package hopper

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
	"github.com/hopperq/hopper/internal/wire"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the default first part of every key: "hopper:{queue}:...".
const DefaultPrefix = "hopper"

// DefaultMaxPayloadBytes is the default QueueConfig.MaxPayloadBytes (1 MiB).
const DefaultMaxPayloadBytes = 1 << 20

// MaxBulk bounds the jobs of one AddBulk call (one Lua script call).
const MaxBulk = 10000

// QueueConfig configures a Queue. A nil *QueueConfig means all defaults;
// NewQueue copies it, so changing it afterwards has no effect.
type QueueConfig struct {
	// Prefix is the first part of every key. Producers and workers of a queue
	// must use the same prefix. Allowed: 1-100 bytes of ASCII letters,
	// digits, '-', '_', '.' and ':'. Defaults to DefaultPrefix.
	Prefix string

	// MaxPayloadBytes bounds a job's payload; a larger one is refused with
	// ErrPayloadTooLarge before anything is sent to Redis. Defaults to
	// DefaultMaxPayloadBytes.
	MaxPayloadBytes int

	// DefaultAttempts applies to jobs that do not set JobOptions.Attempts.
	// Defaults to DefaultAttempts.
	DefaultAttempts int
	// DefaultBackoff applies to jobs that do not set JobOptions.Backoff.
	// Defaults to the zero Backoff: the worker's default
	// (WorkerConfig.DefaultBackoff, else DefaultBackoff()).
	DefaultBackoff Backoff
	// DefaultTimeout applies to jobs that do not set JobOptions.Timeout.
	// Defaults to DefaultTimeout.
	DefaultTimeout time.Duration
	// KeepCompleted applies to jobs that do not set JobOptions.KeepCompleted.
	// Defaults to DefaultKeepCompletedCount jobs for DefaultKeepCompletedAge.
	KeepCompleted *Retention
	// KeepDead applies to jobs that do not set JobOptions.KeepDead. Defaults
	// to DefaultKeepDeadCount jobs for DefaultKeepDeadAge.
	KeepDead *Retention

	// Logger receives the queue's log records (debug only). Defaults to
	// slog.Default() at level Warn and above.
	Logger *slog.Logger

	// WaitReplicas makes every Add and AddBulk wait, after the write, until
	// this many replicas have acknowledged it (Redis WAIT, sent in the same
	// round trip), so an acknowledged job survives a failover to one of
	// them. If fewer acknowledge within WaitTimeout, the jobs are added on the
	// primary all the same and returned together with an error wrapping
	// ErrNotReplicated. 0 (the default) does not wait. The client must be a
	// *redis.Client (also a failover client) or *redis.ClusterClient. For
	// durable adds of some jobs only, use a second Queue handle of the same
	// queue with this set: handles are cheap.
	WaitReplicas int
	// WaitTimeout bounds the wait for WaitReplicas. Defaults to 1s; it must
	// be shorter than the client's ReadTimeout.
	WaitTimeout time.Duration
}

// defaultWaitTimeout is QueueConfig.WaitTimeout's default.
const defaultWaitTimeout = time.Second

func (c *QueueConfig) withDefaults() (QueueConfig, error) {
	var out QueueConfig
	if c != nil {
		out = *c
	}
	if out.Prefix == "" {
		out.Prefix = DefaultPrefix
	}
	if why := keys.CheckPrefix(out.Prefix); why != "" {
		return out, invalid("QueueConfig.Prefix", out.Prefix, "%s", why)
	}
	if out.MaxPayloadBytes == 0 {
		out.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if out.MaxPayloadBytes < 0 || out.MaxPayloadBytes > 512<<20 {
		return out, invalid("QueueConfig.MaxPayloadBytes", out.MaxPayloadBytes, "must be 1..%d (Redis' string limit)", 512<<20)
	}
	if out.DefaultAttempts == 0 {
		out.DefaultAttempts = DefaultAttempts
	}
	if out.DefaultAttempts < 1 || out.DefaultAttempts > MaxAttempts {
		return out, invalid("QueueConfig.DefaultAttempts", out.DefaultAttempts, "must be 1..%d", MaxAttempts)
	}
	if err := out.DefaultBackoff.validate("QueueConfig.DefaultBackoff"); err != nil {
		return out, err
	}
	if out.DefaultTimeout == 0 {
		out.DefaultTimeout = DefaultTimeout
	}
	if out.DefaultTimeout < time.Millisecond {
		return out, invalid("QueueConfig.DefaultTimeout", out.DefaultTimeout, "must be at least 1ms")
	}
	if err := checkRetention("QueueConfig.KeepCompleted", out.KeepCompleted); err != nil {
		return out, err
	}
	if err := checkRetention("QueueConfig.KeepDead", out.KeepDead); err != nil {
		return out, err
	}
	if out.Logger == nil {
		out.Logger = slog.New(warnOnly{slog.Default().Handler()})
	}
	if out.WaitReplicas < 0 || out.WaitReplicas > 100 {
		return out, invalid("QueueConfig.WaitReplicas", out.WaitReplicas, "must be 0 (do not wait) or 1..100")
	}
	if out.WaitTimeout < 0 || (out.WaitTimeout > 0 && out.WaitTimeout < time.Millisecond) {
		return out, invalid("QueueConfig.WaitTimeout", out.WaitTimeout, "must be at least 1ms")
	}
	if out.WaitReplicas > 0 && out.WaitTimeout == 0 {
		out.WaitTimeout = defaultWaitTimeout
	}
	return out, nil
}

// checkWaitClient checks that client can run WAIT on the connection of the
// add (see QueueConfig.WaitReplicas) and answers before its read timeout.
func checkWaitClient(client redis.UniversalClient, c *QueueConfig) error {
	if c.WaitReplicas == 0 {
		return nil
	}
	var readTimeout time.Duration
	switch cl := client.(type) {
	case *redis.Client:
		readTimeout = cl.Options().ReadTimeout
	case *redis.ClusterClient:
		readTimeout = cl.Options().ReadTimeout
	default:
		return invalid("QueueConfig.WaitReplicas", c.WaitReplicas, "needs a *redis.Client or *redis.ClusterClient, not %T", client)
	}
	if readTimeout == 0 {
		readTimeout = 3 * time.Second // go-redis' default
	}
	if readTimeout > 0 && c.WaitTimeout >= readTimeout {
		return invalid("QueueConfig.WaitTimeout", c.WaitTimeout, "must be shorter than the client's ReadTimeout (%s)", readTimeout)
	}
	return nil
}

// ensureRegistered records the queue in its prefix's registry (ListQueues)
// once per Queue value: one more round trip on its first add or schedule.
// Best effort: a failure is retried on the next call.
func (q *Queue) ensureRegistered(ctx context.Context) {
	if !q.registered.Load() {
		if err := register(ctx, q.st.Client(), q.cfg.Prefix, q.name); err == nil {
			q.registered.Store(true)
		}
	}
}

// Queue is the producer and admin handle of one named queue: it adds jobs
// and inspects and steers them. It holds no connection of its own and needs
// no closing. A Queue is safe for concurrent use.
type Queue struct {
	name string
	cfg  QueueConfig
	st   *store.Store
	ids  idGen
	now  func() time.Time // tests: injected clock passed to scripts; nil = Redis TIME

	waitRecheck time.Duration // Wait's re-read interval; 0 = waitRecheck (tests shorten it)

	registered atomic.Bool // the queue's name is in the prefix's registry
	adds       addBatcher
}

// NewQueue returns the handle of queue name on client. The client may be a
// *redis.Client, *redis.ClusterClient, *redis.Ring or failover client; hopper
// never closes it. Queue names: 1-100 bytes of ASCII letters, digits, '-',
// '_' and '.'. NewQueue sends nothing to Redis.
func NewQueue(client redis.UniversalClient, name string, cfg *QueueConfig) (*Queue, error) {
	if client == nil {
		return nil, invalid("client", "nil", "a Redis client is required")
	}
	if why := keys.CheckQueueName(name); why != "" {
		return nil, invalid("queue name", name, "%s", why)
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkWaitClient(client, &c); err != nil {
		return nil, err
	}
	ids, err := newIDGen()
	if err != nil {
		return nil, err
	}
	return &Queue{name: name, cfg: c, st: store.New(client, keys.New(c.Prefix, name)), ids: ids}, nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// Prefix returns the key prefix the queue uses (QueueConfig.Prefix).
func (q *Queue) Prefix() string { return q.cfg.Prefix }

func (q *Queue) nowArg() int64 {
	if q.now == nil {
		return 0
	}
	return q.now().UnixMilli()
}

func (q *Queue) clock() time.Time {
	if q.now == nil {
		return time.Now()
	}
	return q.now()
}

// Add enqueues one job named name (the handler routes by it) with payload,
// in one round trip. It returns the job with its ID and state (waiting or
// delayed). When opts.ID names a job that already exists, nothing is added
// and the existing job is returned with Duplicate set.
//
// Errors: *ValidationError (ErrInvalid) or ErrPayloadTooLarge for bad
// input, before anything is sent; ctx errors; wrapped Redis errors. If Redis
// fails mid-call the job may or may not have been added: call Add again with
// the same ID to be sure it exists exactly once. With
// QueueConfig.WaitReplicas, an add too few replicas acknowledged returns
// the job and an error wrapping ErrNotReplicated.
func (q *Queue) Add(ctx context.Context, name string, payload []byte, opts *JobOptions) (*Job, error) {
	jobs, err := q.add(ctx, []NewJob{{Name: name, Payload: payload, Options: opts}}, "add")
	if len(jobs) == 0 {
		return nil, err
	}
	return jobs[0], err
}

// AddJSON is Add with v encoded as JSON for the payload.
func (q *Queue) AddJSON(ctx context.Context, name string, v any, opts *JobOptions) (*Job, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, invalid("payload", fmt.Sprintf("%T", v), "not JSON-encodable: %v", err)
	}
	return q.Add(ctx, name, b, opts)
}

// AddBulk enqueues jobs atomically in one round trip: either every job is
// validated and added (or found to exist already), or none is. Jobs with an
// ID that exists already, or that repeat an ID earlier in the batch, come
// back with Duplicate set. The result has one Job per input, in order. At
// most MaxBulk jobs per call. With QueueConfig.WaitReplicas, a batch too
// few replicas acknowledged returns the jobs and an error wrapping
// ErrNotReplicated.
func (q *Queue) AddBulk(ctx context.Context, jobs []NewJob) ([]*Job, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	if len(jobs) > MaxBulk {
		return nil, invalid("AddBulk jobs", len(jobs), "at most %d jobs per call", MaxBulk)
	}
	return q.add(ctx, jobs, "add bulk")
}

func (q *Queue) add(ctx context.Context, jobs []NewJob, op string) ([]*Job, error) {
	nowMs := q.clock().UnixMilli()
	resolved := make([]resolvedJob, len(jobs))
	send := make([]store.NewJob, 0, len(jobs))
	firstOf := make(map[string]int, len(jobs)) // id or "u:"+unique key -> index in send
	sendIdx := make([]int, len(jobs))
	firstIdx := make([]int, 0, len(jobs)) // send index -> index in jobs
	for i, nj := range jobs {
		r, err := q.resolve(nj.Name, nj.Payload, nj.Options, nowMs)
		if err != nil {
			if len(jobs) > 1 {
				return nil, fmt.Errorf("job %d: %w", i, err)
			}
			return nil, err
		}
		resolved[i] = r
		if k, ok := firstOf[r.id]; ok {
			sendIdx[i] = -1 - k // duplicate of an earlier job in this batch
			continue
		}
		if r.unique != "" {
			if k, ok := firstOf["u:"+r.unique]; ok {
				sendIdx[i] = -1 - k
				continue
			}
		}
		body, err := wire.Encode(&r.header, r.payload)
		if err != nil {
			return nil, fmt.Errorf("hopper: encode job: %w", err)
		}
		firstOf[r.id] = len(send)
		firstIdx = append(firstIdx, i)
		if r.unique != "" {
			firstOf["u:"+r.unique] = len(send)
		}
		sendIdx[i] = len(send)
		send = append(send, store.NewJob{ID: r.id, Body: body, DelayMs: r.delayMs, RunAtMs: r.runAtMs,
			Priority: r.priority, Unique: r.unique, WindowMs: r.windowMs})
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hopper: %s: %w", op, err)
	}
	res, acked, err := q.submit(ctx, send)
	if err != nil {
		return nil, fmt.Errorf("hopper: %s to queue %s: %w", op, q.name, redisError(err))
	}
	q.ensureRegistered(ctx)
	out := make([]*Job, len(jobs))
	for i := range resolved {
		k, dupInBatch := sendIdx[i], false
		if k < 0 {
			k, dupInBatch = -1-k, true
		}
		ar := res[k]
		var j *Job
		switch {
		case ar.Added:
			// Built from what was sent, without decoding it again.
			r := &resolved[i]
			if dupInBatch {
				r = &resolved[firstIdx[k]]
			}
			j = jobFromHeader(q.name, r.id, &r.header, r.payload)
		case ar.Body == "": // a unique key's job that no longer exists
			j = &Job{ID: ar.ID, Queue: q.name}
		default:
			j, err = jobFromBody(q.name, ar.ID, ar.Body)
		}
		if err != nil {
			return nil, err
		}
		j.State = State(ar.State)
		j.Duplicate = !ar.Added || dupInBatch
		out[i] = j
	}
	if acked < q.cfg.WaitReplicas {
		return out, fmt.Errorf("hopper: %s to queue %s: %w: %d of %d within %s", op, q.name, ErrNotReplicated, acked, q.cfg.WaitReplicas, q.cfg.WaitTimeout)
	}
	return out, nil
}

// Job returns a snapshot of job id, including its state, attempts, progress,
// result and last error, in one round trip. ErrJobNotFound if there is none.
func (q *Queue) Job(ctx context.Context, id string) (*Job, error) {
	rec, err := q.st.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("hopper: get job %s: %w", id, err)
	}
	if rec == nil {
		return nil, fmt.Errorf("%w: %s in queue %s", ErrJobNotFound, id, q.name)
	}
	return jobFromRecord(q.name, rec)
}

// Pause stops workers from taking new jobs from the queue; jobs keep
// waiting (and new ones can be added) until Resume. Running jobs finish;
// jobs a worker claimed ahead and has not started go back to waiting at its
// next call to Redis (WorkerConfig.Prefetch).
func (q *Queue) Pause(ctx context.Context) error {
	if err := q.st.Pause(ctx, true); err != nil {
		return fmt.Errorf("hopper: pause queue %s: %w", q.name, err)
	}
	return nil
}

// Resume undoes Pause; idle workers wake at once.
func (q *Queue) Resume(ctx context.Context) error {
	if err := q.st.Pause(ctx, false); err != nil {
		return fmt.Errorf("hopper: resume queue %s: %w", q.name, err)
	}
	return nil
}

// RemoveOptions are options of Queue.Remove. nil means the defaults.
type RemoveOptions struct {
	// Force removes the job even while a worker runs it. That worker's
	// handler then sees its context cancelled at the next heartbeat, and its
	// acknowledgement is refused (ErrLeaseLost).
	Force bool
}

// Remove deletes job id and all its data, whatever its state, except that
// an active job is refused with ErrJobActive unless opts.Force is set.
// ErrJobNotFound if there is no such job. Removing a waiting job costs
// O(waiting jobs) in Redis (LREM).
func (q *Queue) Remove(ctx context.Context, id string, opts *RemoveOptions) error {
	force := opts != nil && opts.Force
	code, state, err := q.st.Remove(ctx, id, force, "")
	if err != nil {
		return fmt.Errorf("hopper: remove job %s: %w", id, err)
	}
	switch code {
	case store.RemoveMissing:
		return fmt.Errorf("%w: %s in queue %s", ErrJobNotFound, id, q.name)
	case store.RemoveActive:
		return fmt.Errorf("%w: %s is running; set RemoveOptions.Force to remove it anyway", ErrJobActive, id)
	}
	q.cfg.Logger.Debug("hopper: job removed", "queue", q.name, "job", id, "state", state)
	return nil
}

// idGen makes job IDs unique across processes without a Redis round trip:
// a random 64-bit prefix per Queue value, then a counter. IDs are generated
// client-side so that a retried Add (after a timeout) carries the same ID and
// can never add a second copy.
type idGen struct {
	prefix string
	n      *atomic.Uint64
}

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

func newIDGen() (idGen, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return idGen{}, fmt.Errorf("hopper: random job id prefix: %w", err)
	}
	return idGen{prefix: idEncoding.EncodeToString(b[:]), n: new(atomic.Uint64)}, nil
}

func (g idGen) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 32)
}
