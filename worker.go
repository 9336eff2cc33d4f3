package hopper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
	"github.com/redis/go-redis/v9"
)

// Worker runs jobs from one or more queues with a pool of goroutines. Its
// lifecycle follows http.Server: Run blocks while it works, Shutdown stops
// it gracefully, Close stops it at once. A Worker runs once: after it has
// stopped, Run returns ErrWorkerClosed. All methods are safe for concurrent
// use.
//
// How it works: one fetch loop claims ready jobs in batches (one script call
// claims a job for every free slot, plus, on a single-queue worker, short
// jobs ahead of them: WorkerConfig.Prefetch) and starts a slot goroutine
// per job. A slot does not wait for its outcome's write: an ack loop writes
// the outcomes of the moment in one call, which also claims the next jobs,
// and the slot runs the hooks when the reply returns. When the fetch loop
// finds nothing it goes idle, and one blocking reader per process
// (BZPOPMIN on the queues' wake-up markers) wakes it within milliseconds of
// an add. A heartbeat extends the leases of all claimed jobs in one call per
// queue. A maintenance pass promotes due delayed jobs and recovers expired
// leases, on a timer set to the next due time and every PollInterval.
type Worker struct {
	client  redis.UniversalClient
	handler Handler
	cfg     WorkerConfig
	log     *slog.Logger
	id      string
	queues  []*workerQueue
	strict  []*workerQueue // queues by weight, highest first
	groups  []*blockGroup
	weights int
	now     func() time.Time // tests: injected clock passed to scripts; nil = Redis TIME

	mu          sync.Mutex
	state       int                      // workerNew, workerRunning, workerStopping, workerStopped
	running     map[*runningJob]struct{} // claimed jobs not yet done: buffered, running or being acknowledged
	busy        int                      // under mu: slots running a job
	buf         []*runningJob            // under mu: jobs claimed ahead, waiting for a slot (FIFO)
	claiming    int                      // under mu: jobs asked for by claims in flight
	pendAcks    int                      // under mu: outcomes handed to the ack loop, not yet answered
	acksClosed  bool                     // under mu: the ack loop has stopped taking requests
	avgRun      atomic.Int64             // moving average of handler run time, ns
	avgCall     atomic.Int64             // moving average of a claim or ack call's round trip, ns
	nextDue     time.Time                // local time of the earliest known due job; zero = none
	idle        atomic.Bool
	clockOffset atomic.Int64 // Redis clock minus local clock, ms

	intake     chan struct{} // closed: stop fetching
	fetchDone  chan struct{} // closed when the fetch loop has returned
	noStart    bool          // under mu: shutdown waits for handlers; hand claimed jobs back
	loopsCtx   context.Context
	loopsStop  context.CancelFunc
	hardCtx    context.Context // parent of handler contexts
	hardCancel context.CancelCauseFunc
	slotFreed  chan struct{}
	wake       chan struct{}
	dueKick    chan struct{}
	handlers   sync.WaitGroup
	loops      sync.WaitGroup
	stopOnce   sync.Once
	stopErr    error
	stopped    chan struct{} // closed when shutdown has finished
	// drained, if set (TickHandler), is signalled when the worker has no job
	// running and its queues have none ready.
	drained chan struct{}
	acks    chan ackReq
	host    string
	started time.Time
}

// ackReq is one outcome waiting for the ack loop: job r's completion
// (r.ack) or failed attempt or snooze (r.fail). The reply goes to the slot
// that sent it.
type ackReq struct {
	slot *slot
	r    *runningJob
}

type ackReply struct {
	status int
	err    error
}

const (
	workerNew = iota
	workerRunning
	workerStopping
	workerStopped
)

type workerQueue struct {
	name   string
	weight int
	st     *store.Store
	keys   keys.Queue
	// sentInfo is the registration info last stored in this queue's worker
	// registry (maintenance goroutine only): unchanged info is not resent.
	sentInfo string
	// kept are the schedules declared with KeepSchedule (set before Run);
	// keptDone says they have all been written once (maintenance only).
	kept     []keptSchedule
	keptDone bool
}

// keptSchedule is a schedule a worker keeps registered (KeepSchedule).
type keptSchedule struct {
	q  *Queue
	ps *preparedSchedule
}

// blockGroup is the queues one blocking reader waits on: all of them on a
// single Redis node; one queue each on a cluster (a multi-key BZPOPMIN must
// stay within one hash slot).
type blockGroup struct {
	queues  []*workerQueue
	keys    []string // markers, then the wake key
	wakeKey string
	idle    chan struct{}
}

// runningJob states.
const (
	jobQueued  = iota // claimed, waiting for a slot; lease held
	jobRunning        // handler running, lease held
	jobAcking         // outcome decided, acknowledgement being written
	jobDone           // acknowledged, released, or lease lost: nothing more to write
)

// runningJob is a job this worker holds a lease on, from its claim until
// its outcome is written (or its lease is lost or handed back).
type runningJob struct {
	q      *workerQueue
	c      store.Claimed   // the claim: id, lease token, attempts, stalls (body until decoded)
	ctx    context.Context // the handler's, cancelled when the job ends or its lease is lost
	cancel context.CancelCauseFunc
	state  atomic.Int32
	// leaseUntil is a local-clock lower bound of the lease deadline in Redis;
	// guarded by Worker.mu.
	leaseUntil time.Time
	// Set by the slot that runs the job.
	job     *Job
	started time.Time     // when the handler was called
	ran     time.Duration // the handler's run time, once it returned
	// The outcome on its way to Redis: a completion (ack), or a failed
	// attempt or snooze (fail, with the handler's error and the hook to run).
	ack  store.Ack
	fail *store.Fail
	herr error
	hook func()
}

// NewWorker returns a worker that runs jobs of queue with handler. It sends
// nothing to Redis until Run.
func NewWorker(client redis.UniversalClient, queue string, handler Handler, cfg *WorkerConfig) (*Worker, error) {
	return NewMultiWorker(client, map[string]int{queue: 1}, handler, cfg)
}

// NewMultiWorker returns a worker that serves several queues with one pool
// of WorkerConfig.Concurrency goroutines. queues maps each queue name to its
// weight (>= 1): queues are served in proportion to their weights, or, with
// WorkerConfig.StrictPriority, highest weight first (asynq's convention).
//
// On a single Redis node (or Sentinel) one blocking connection serves all the
// queues. On Redis Cluster or a Ring, whose queues live on different slots,
// the worker holds one blocking connection per queue.
func NewMultiWorker(client redis.UniversalClient, queues map[string]int, handler Handler, cfg *WorkerConfig) (*Worker, error) {
	if client == nil {
		return nil, invalid("client", "nil", "a Redis client is required")
	}
	if handler == nil {
		return nil, invalid("handler", "nil", "a Handler is required")
	}
	if len(queues) == 0 {
		return nil, invalid("queues", "", "at least one queue is required")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("hopper: worker id: %w", err)
	}
	w := &Worker{
		client: client, handler: handler, cfg: c, log: c.Logger, id: hex.EncodeToString(idb[:]),
		running: make(map[*runningJob]struct{}), intake: make(chan struct{}), fetchDone: make(chan struct{}),
		slotFreed: make(chan struct{}, 1),
		wake:      make(chan struct{}, 1), dueKick: make(chan struct{}, 1), stopped: make(chan struct{}),
		acks: make(chan ackReq, max(c.Concurrency, maxAckBatch)),
	}
	w.host, _ = os.Hostname()
	names := make([]string, 0, len(queues))
	for name := range queues {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if why := keys.CheckQueueName(name); why != "" {
			return nil, invalid("queue name", name, "%s", why)
		}
		weight := queues[name]
		if weight < 1 || weight > 1000000 {
			return nil, invalid("queue weight", fmt.Sprintf("%s=%d", name, weight), "must be 1..1000000")
		}
		k := keys.New(c.Prefix, name)
		w.queues = append(w.queues, &workerQueue{name: name, weight: weight, st: store.New(client, k), keys: k})
		w.weights += weight
	}
	w.strict = append([]*workerQueue(nil), w.queues...)
	sort.SliceStable(w.strict, func(i, j int) bool { return w.strict[i].weight > w.strict[j].weight })
	if _, single := client.(*redis.Client); single {
		w.groups = []*blockGroup{w.newGroup(w.queues)}
	} else {
		for _, q := range w.queues {
			w.groups = append(w.groups, w.newGroup([]*workerQueue{q}))
		}
	}
	w.loopsCtx, w.loopsStop = context.WithCancel(context.Background())
	w.hardCtx, w.hardCancel = context.WithCancelCause(context.Background())
	return w, nil
}

func (w *Worker) newGroup(qs []*workerQueue) *blockGroup {
	g := &blockGroup{queues: qs, wakeKey: qs[0].keys.Wake(w.id), idle: make(chan struct{}, 1)}
	for _, q := range qs {
		g.keys = append(g.keys, q.keys.Key(keys.Marker))
	}
	g.keys = append(g.keys, g.wakeKey)
	return g
}

// KeepSchedule declares a recurring schedule the worker keeps registered
// in queue q (one of the worker's queues, same prefix). Run writes it as
// Queue.UpsertSchedule does — upserting the same spec at every start keeps
// its next tick — and the worker writes it again whenever its maintenance
// pass finds fewer schedules in the queue than it keeps: after a Redis
// without persistence restarted empty, or after the schedule was removed by
// hand. A schedule declared in code thus needs no separate deploy step and
// survives data loss; to retire one, remove it from the code and then from
// Redis. The schedule's jobs take q's option defaults. Arguments are
// checked at once; call it before Run.
func (w *Worker) KeepSchedule(q *Queue, key, spec, jobName string, payload []byte, opts *ScheduleOptions) error {
	if q == nil {
		return invalid("queue", "nil", "a Queue is required")
	}
	var wq *workerQueue
	for _, x := range w.queues {
		if x.name == q.name && x.keys.Key(keys.Meta) == q.st.Keys().Key(keys.Meta) {
			wq = x
		}
	}
	if wq == nil {
		return invalid("queue", q.name, "is not one of the worker's queues (name %v, prefix %q)", w.queueNames(), w.cfg.Prefix)
	}
	ps, err := q.prepareSchedule(key, spec, jobName, payload, opts)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != workerNew {
		return fmt.Errorf("hopper: KeepSchedule %s: %w (call it before Run)", key, ErrWorkerClosed)
	}
	wq.kept = slices.DeleteFunc(wq.kept, func(k keptSchedule) bool { return k.ps.key == key })
	wq.kept = append(wq.kept, keptSchedule{q: q, ps: ps})
	return nil
}

func (w *Worker) queueNames() []string {
	names := make([]string, len(w.queues))
	for i, q := range w.queues {
		names[i] = q.name
	}
	return names
}

// keepSchedules writes the kept schedules of q that Redis lacks (all of
// them on the first call). Maintenance goroutine only.
func (w *Worker) keepSchedules(ctx context.Context, q *workerQueue) {
	names := make([]string, len(q.kept))
	for i, k := range q.kept {
		names[i] = k.ps.key
	}
	have := map[string]bool{}
	if q.keptDone {
		recs, err := q.st.ScheduleDefs(ctx, names, len(names))
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("hopper: reading kept schedules failed", "queue", q.name, "err", err)
			}
			return
		}
		for _, r := range recs {
			have[r.Key] = true
		}
	}
	ok := true
	for _, k := range q.kept {
		if have[k.ps.key] {
			continue
		}
		if _, err := k.q.writeSchedule(ctx, k.ps); err != nil {
			ok = false
			if ctx.Err() == nil {
				w.log.Warn("hopper: writing a kept schedule failed; retrying next pass", "queue", q.name, "schedule", k.ps.key, "err", err)
			}
			continue
		}
		if q.keptDone {
			w.log.Warn("hopper: kept schedule was missing from Redis (data lost or removed by hand); registered it again",
				"queue", q.name, "schedule", k.ps.key)
		}
	}
	if ok {
		q.keptDone = true
	}
}

// Run processes jobs until ctx ends or Shutdown or Close is called. When ctx
// ends, Run shuts down gracefully within WorkerConfig.ShutdownTimeout.
// Redis errors do not stop it: it logs them and retries with backoff. It
// returns nil after a stop, and ErrWorkerClosed if the worker already ran or
// was shut down. With WorkerConfig.StrictEviction it first refuses (with
// ErrEvictingRedis) to run against a Redis whose maxmemory-policy may evict
// keys.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.checkEviction(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	if w.state != workerNew {
		w.mu.Unlock()
		return ErrWorkerClosed
	}
	w.state = workerRunning
	w.mu.Unlock()

	w.started = time.Now()
	names := w.queueNames()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := register(rctx, w.client, w.cfg.Prefix, names...); err != nil {
		w.log.Warn("hopper: could not register the worker's queues in the queue registry", "err", err)
	}
	cancel()
	w.loops.Add(5 + len(w.groups))
	go w.ackLoop()
	go w.fetchLoop()
	go w.heartbeatLoop()
	go w.watchdogLoop()
	go w.maintenanceLoop()
	for _, g := range w.groups {
		go w.blockLoop(g)
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
		_ = w.Shutdown(sctx)
		cancel()
	case <-w.stopped:
	}
	<-w.stopped
	return nil
}

// Shutdown stops the worker gracefully: it stops fetching at once, lets
// running handlers finish until ctx ends, then cancels the handlers still
// running (their ctx cause is ErrWorkerShutdown) and hands their jobs back
// to waiting without spending an attempt. It returns nil if every handler
// finished, else ctx's error. A handler that ignores its ctx keeps running
// in the background, but can no longer acknowledge its job. Calling
// Shutdown again waits for the first call's result.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	if w.state == workerNew {
		w.state = workerStopped
		w.mu.Unlock()
		w.stopOnce.Do(func() { w.loopsStop(); w.hardCancel(ErrWorkerClosed); close(w.stopped) })
		return nil
	}
	if w.state == workerRunning {
		w.state = workerStopping
	}
	w.mu.Unlock()
	w.stopOnce.Do(func() {
		w.stopErr = w.shutdown(ctx)
		w.mu.Lock()
		w.state = workerStopped
		w.mu.Unlock()
		close(w.stopped)
	})
	select {
	case <-w.stopped:
		return w.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the worker at once: like Shutdown with no drain time, it
// cancels running handlers and hands their jobs back to waiting. It returns
// nil (it satisfies io.Closer); a stopped worker stays stopped.
func (w *Worker) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = w.Shutdown(ctx)
	return nil
}

func (w *Worker) shutdown(ctx context.Context) error {
	close(w.intake)
	w.wakeBlockers()
	// A fetch in flight may still claim jobs: let it start them (they are
	// drained like the others) before waiting for the handlers. Jobs claimed
	// later still (the budget ran out first) are handed straight back.
	select {
	case <-w.fetchDone:
	case <-ctx.Done():
	}
	w.mu.Lock()
	w.noStart = true
	w.mu.Unlock()
	w.releaseBuffered()
	drained := make(chan struct{})
	go func() { w.handlers.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		w.releaseRunning()
	}
	w.loopsStop()
	w.loops.Wait()
	uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, q := range w.queues {
		_ = q.st.Unregister(uctx, w.id) // best effort: the registry TTL drops it anyway
	}
	return err
}

// wakeBlockers interrupts the worker's own blocking reads by pushing to its
// private wake keys (a blocked call cannot be cancelled through ctx). The key
// expires by itself in case nobody pops it.
func (w *Worker) wakeBlockers() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, g := range w.groups {
		_, err := w.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAdd(ctx, g.wakeKey, redis.Z{Score: 0, Member: "stop"})
			p.PExpire(ctx, g.wakeKey, 10*time.Second)
			return nil
		})
		if err != nil {
			w.log.Warn("hopper: could not wake blocked reader; it stops within PollInterval", "err", err)
		}
	}
}

// releaseRunning cancels the handlers still running (cause
// ErrWorkerShutdown) and hands their jobs (and any still waiting for a slot)
// back to waiting, one call per queue. The jobs are marked released before
// their handlers are cancelled: a handler that returns at once, with its
// ctx's error, then cannot record that as a failed attempt.
func (w *Worker) releaseRunning() {
	byQueue := map[*workerQueue][]store.Lease{}
	w.mu.Lock()
	for r := range w.running {
		if r.state.CompareAndSwap(jobRunning, jobDone) || r.state.CompareAndSwap(jobQueued, jobDone) {
			byQueue[r.q] = append(byQueue[r.q], store.Lease{ID: r.c.ID, Token: r.c.Token})
		}
	}
	w.mu.Unlock()
	w.hardCancel(ErrWorkerShutdown)
	w.release(byQueue, true)
}

// releaseBuffered hands the jobs claimed ahead, which no slot has started,
// back to waiting without spending an attempt (shutdown).
func (w *Worker) releaseBuffered() {
	w.mu.Lock()
	buf := w.buf
	w.buf = nil
	for _, r := range buf {
		delete(w.running, r)
	}
	w.mu.Unlock()
	byQueue := map[*workerQueue][]store.Lease{}
	for _, r := range buf {
		r.cancel(nil)
		if r.state.CompareAndSwap(jobQueued, jobDone) {
			byQueue[r.q] = append(byQueue[r.q], store.Lease{ID: r.c.ID, Token: r.c.Token})
		}
	}
	w.release(byQueue, false)
}

// releaseBufferedOnPause hands the jobs claimed ahead back to waiting when
// a call finds queue q paused: a pause stops the worker from starting jobs
// it has not started yet, not only from claiming more. Running jobs finish.
func (w *Worker) releaseBufferedOnPause(q *workerQueue) {
	w.mu.Lock()
	n := len(w.buf)
	w.mu.Unlock()
	if n == 0 {
		return
	}
	w.log.Debug("hopper: queue paused; handing back the jobs claimed ahead", "queue", q.name, "jobs", n)
	w.releaseBuffered()
}

// release hands leased jobs back to waiting, one call per queue; logEach
// logs each job handed back.
func (w *Worker) release(byQueue map[*workerQueue][]store.Lease, logEach bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for q, ls := range byQueue {
		res, err := q.st.Release(ctx, ls)
		if err != nil {
			w.log.Error("hopper: could not hand unfinished jobs back; they are recovered when their leases expire",
				"queue", q.name, "jobs", len(ls), "err", err)
			continue
		}
		for i, s := range res {
			if s == store.LeaseOK && logEach {
				w.log.Info("hopper: job handed back to waiting at shutdown", "queue", q.name, "job", ls[i].ID)
			}
		}
	}
}

func (w *Worker) nowArg() int64 {
	if w.now == nil {
		return 0
	}
	return w.now().UnixMilli()
}

func (w *Worker) clock() time.Time {
	if w.now == nil {
		return time.Now()
	}
	return w.now()
}

func (w *Worker) intakeClosed() bool {
	select {
	case <-w.intake:
		return true
	default:
		return false
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sleep waits d or until stop is closed; it reports whether d elapsed.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

func nextErrDelay(d time.Duration) time.Duration {
	if d == 0 {
		return 100 * time.Millisecond
	}
	return min(2*d, 5*time.Second)
}

// noteClock records the offset between Redis' clock and the local one, from
// a reply stamped with Redis time redisMs that was sent at sent.
func (w *Worker) noteClock(redisMs int64, sent time.Time) {
	mid := sent.Add(time.Since(sent) / 2)
	w.clockOffset.Store(redisMs - mid.UnixMilli())
}

// noteDue records a due time (Redis clock, ms) so the maintenance loop
// promotes it on time.
func (w *Worker) noteDue(dueMs int64) {
	if dueMs <= 0 {
		return
	}
	local := time.UnixMilli(dueMs - w.clockOffset.Load())
	w.mu.Lock()
	earlier := w.nextDue.IsZero() || local.Before(w.nextDue)
	if earlier {
		w.nextDue = local
	}
	w.mu.Unlock()
	if earlier {
		signal(w.dueKick)
	}
}

// noteDueIn records that a job this worker rescheduled is due in d.
func (w *Worker) noteDueIn(d time.Duration) {
	w.noteDue(time.Now().Add(d).UnixMilli() + w.clockOffset.Load())
}

// queueOrder returns the order in which to try the queues this round.
func (w *Worker) queueOrder() []*workerQueue {
	if len(w.queues) == 1 || w.cfg.StrictPriority {
		return w.strict
	}
	// Weighted random permutation: each position is drawn with probability
	// proportional to weight among the queues left.
	left := append([]*workerQueue(nil), w.queues...)
	total := w.weights
	out := make([]*workerQueue, 0, len(left))
	for len(left) > 0 {
		n := mrand.IntN(total)
		for i, q := range left {
			if n < q.weight {
				out = append(out, q)
				total -= q.weight
				left = append(left[:i], left[i+1:]...)
				break
			}
			n -= q.weight
		}
	}
	return out
}

func (w *Worker) fetchLoop() {
	defer w.loops.Done()
	defer close(w.fetchDone)
	var errDelay time.Duration
	for !w.intakeClosed() {
		w.mu.Lock()
		want := w.wantLocked()
		// Completions on their way to Redis claim the next jobs in the same
		// call (single-queue workers): leave the claim to them.
		deferToAcks := w.pendAcks > 0 && len(w.queues) == 1
		w.mu.Unlock()
		if want <= 0 || deferToAcks {
			select {
			case <-w.slotFreed:
			case <-w.intake:
				return
			}
			continue
		}
		drained, err := w.fetchRound()
		if err != nil {
			errDelay = nextErrDelay(errDelay)
			w.log.Warn("hopper: fetch failed; retrying", "err", err, "retry_in", errDelay)
			if !sleep(errDelay, w.intake) {
				return
			}
			continue
		}
		errDelay = 0
		if !drained {
			continue
		}
		w.idle.Store(true)
		for _, g := range w.groups {
			signal(g.idle)
		}
		var slotFreed chan struct{}
		if w.drained != nil {
			w.mu.Lock()
			empty := w.busy == 0 && len(w.buf) == 0
			w.mu.Unlock()
			if empty {
				signal(w.drained)
			}
			// A finishing job may have made another ready (a retry without
			// backoff): look again when one ends.
			slotFreed = w.slotFreed
		}
		select {
		case <-w.wake:
		case <-slotFreed:
		case <-w.intake:
		}
		w.idle.Store(false)
	}
}

// maxClaim bounds the jobs one script call claims.
const maxClaim = 256

// wantLocked returns how many more jobs the worker would hold: a job for
// every free slot, plus the jobs it claims ahead, minus those claimed or
// being claimed. Called under mu.
func (w *Worker) wantLocked() int {
	return w.cfg.Concurrency + w.aheadLocked() - w.busy - len(w.buf) - w.claiming
}

// reserveLocked reserves the jobs the caller is about to claim (wantLocked,
// capped), so that two claims in flight do not ask for the same slots.
// dispatch releases the reservation. Called under mu.
func (w *Worker) reserveLocked() int {
	n := min(max(w.wantLocked(), 0), maxClaim)
	w.claiming += n
	return n
}

// aheadLocked returns how many jobs a single-queue worker claims beyond its
// free slots: about as many as its slots get through in two round trips to
// Redis (both measured, as moving averages), capped by Prefetch. Slots that
// finish short jobs then start the next one at once while completions and
// claims travel in batches; jobs that take longer than a round trip are not
// claimed ahead at all, so other workers are not starved of them.
func (w *Worker) aheadLocked() int {
	if len(w.queues) != 1 || w.cfg.Prefetch <= 0 {
		return 0
	}
	run, call := w.avgRun.Load(), w.avgCall.Load()
	if run <= 0 || call <= 0 {
		return 0 // nothing measured yet: a fresh worker claims only for its slots
	}
	n := 2 * int64(w.cfg.Concurrency) * call / run
	return int(min(n, int64(w.cfg.Prefetch)))
}

// noteRun and noteCall feed the moving averages of handler run time and
// script call time (ns) that aheadLocked uses. Concurrent updates may lose
// one sample; that is harmless for an average.
func (w *Worker) noteRun(d time.Duration)  { ewma(&w.avgRun, int64(d)) }
func (w *Worker) noteCall(d time.Duration) { ewma(&w.avgCall, int64(d)) }

func ewma(v *atomic.Int64, sample int64) {
	old := v.Load()
	if old == 0 {
		v.Store(sample)
		return
	}
	v.Store(old + (sample-old)/8)
}

// fetchRound claims the jobs the worker wants across its queues and starts
// them. It reports whether every queue came up short, i.e. had no more
// ready jobs (the worker may go idle: the next add sets the wake-up marker).
func (w *Worker) fetchRound() (drained bool, err error) {
	w.mu.Lock()
	left := w.reserveLocked()
	w.mu.Unlock()
	for _, q := range w.queueOrder() {
		if left == 0 || w.intakeClosed() {
			break
		}
		sent := time.Now()
		res, err := q.st.Fetch(w.loopsCtx, w.nowArg(), left, w.cfg.LeaseDuration.Milliseconds())
		if err != nil {
			w.unreserve(left)
			return false, fmt.Errorf("queue %s: %w", q.name, err)
		}
		w.noteCall(time.Since(sent))
		w.noteClock(res.Now, sent)
		w.noteDue(res.NextDue)
		left -= len(res.Jobs)
		w.dispatch(q, res.Jobs, sent, len(res.Jobs))
		if res.Paused {
			w.releaseBufferedOnPause(q)
		}
	}
	w.unreserve(left)
	return left > 0, nil
}

// unreserve releases n reserved jobs that no claim will bring.
func (w *Worker) unreserve(n int) {
	w.mu.Lock()
	w.claiming -= n
	w.mu.Unlock()
}

// dispatch takes jobs claimed by a call sent at sent: each goes to a free
// slot (a new goroutine) or, when every slot is busy, to the worker's buffer
// of jobs claimed ahead, from which finishing slots take their next job.
// It releases reserved jobs of the claim's reservation. After shutdown
// stopped starting jobs, claimed jobs are handed straight back.
func (w *Worker) dispatch(q *workerQueue, cs []store.Claimed, sent time.Time, reserved int) {
	var start []*runningJob
	var back []store.Lease
	until := sent.Add(w.cfg.LeaseDuration)
	w.mu.Lock()
	w.claiming -= reserved
	for _, c := range cs {
		if w.noStart {
			back = append(back, store.Lease{ID: c.ID, Token: c.Token})
			continue
		}
		ctx, cancel := context.WithCancelCause(w.hardCtx)
		r := &runningJob{c: c, q: q, ctx: ctx, cancel: cancel, leaseUntil: until}
		w.running[r] = struct{}{}
		if w.busy < w.cfg.Concurrency {
			w.busy++
			w.handlers.Add(1) // before shutdown's Wait: both under mu
			start = append(start, r)
		} else {
			w.buf = append(w.buf, r)
		}
	}
	w.mu.Unlock()
	for _, r := range start {
		go w.runSlot(r)
	}
	if len(back) > 0 {
		w.release(map[*workerQueue][]store.Lease{q: back}, false)
	}
}

// nextLocked gives a slot whose job has ended its next job: the oldest one
// claimed ahead, or nil, and then the slot is free. Called under mu.
func (w *Worker) nextLocked() *runningJob {
	if !w.noStart && len(w.buf) > 0 {
		r := w.buf[0]
		w.buf[0] = nil
		w.buf = w.buf[1:]
		w.handlers.Add(1) // the ending job still holds one: Wait cannot be between
		return r
	}
	w.busy--
	return nil
}

func (w *Worker) next() *runningJob {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextLocked()
}

// active returns the number of busy slots.
func (w *Worker) active() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy
}

// full reports whether every slot is busy.
func (w *Worker) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy >= w.cfg.Concurrency
}

// maxSlotPending bounds the completions a slot has in flight: past it, the
// slot waits for a reply before starting another job.
const maxSlotPending = 64

// slot is one concurrency slot's goroutine state: the completions it has
// sent to the ack loop and not yet seen answered. A slot does not wait for
// its completions to be written before it starts its next job; it runs
// their hooks when their replies come back.
type slot struct {
	replies chan slotReply
	pending int
}

type slotReply struct {
	r   *runningJob
	rep ackReply
}

// runSlot runs jobs on one concurrency slot: the given job, then jobs
// claimed ahead, until none is left; then it finishes the completions it
// still has in flight.
func (w *Worker) runSlot(r *runningJob) {
	s := &slot{replies: make(chan slotReply, maxSlotPending)}
	for r != nil {
		if s.pending == maxSlotPending {
			w.replied(s, <-s.replies)
		}
		r = w.runJob(s, r)
	drain:
		for s.pending > 0 {
			select {
			case sr := <-s.replies:
				w.replied(s, sr)
			default:
				break drain
			}
		}
	}
	signal(w.slotFreed)
	for s.pending > 0 {
		w.replied(s, <-s.replies)
	}
}

// runJob runs one claimed job and records its outcome (a completion is
// sent, and its hooks run when the reply comes back). It returns the slot's
// next job, if any.
func (w *Worker) runJob(s *slot, r *runningJob) *runningJob {
	until, ok := w.begin(r)
	if !ok {
		w.retire(r)
		return w.next()
	}
	q, c := r.q, r.c
	job, err := jobFromBody(q.name, c.ID, c.Body)
	if err != nil {
		// A body no handler can read (a foreign producer's bug): dead-letter it
		// rather than let it cycle.
		job = &Job{ID: c.ID, Queue: q.name, Name: "?", keepDead: wireDefaultKeepDead()}
	}
	job.State = StateActive
	job.AttemptsMade, job.Stalls = c.Attempts, c.Stalls
	job.StartedAt = w.clock()
	job.DueAt = until
	job.lease = &jobLease{st: q.st, token: c.Token}
	r.job = job
	r.c.Body = ""
	if err != nil {
		w.finish(s, r, job, Permanent(err), false)
	} else if next, async := w.process(s, r); async {
		return next
	}
	w.retire(r)
	return w.next()
}

// begin marks a claimed job running and returns its lease deadline. It refuses a job whose lease was lost
// while it waited in the buffer, and one whose claim came back too late to
// use: a partition that held the reply, a frozen process. Its lease has
// expired or is about to, and the job may already run elsewhere; it is left
// to recovery rather than started on a run whose outcome would be refused.
func (w *Worker) begin(r *runningJob) (until time.Time, ok bool) {
	if !r.state.CompareAndSwap(jobQueued, jobRunning) {
		return until, false
	}
	w.mu.Lock()
	until = r.leaseUntil
	w.mu.Unlock()
	if left := time.Until(until); left <= w.leaseMargin() {
		r.state.Store(jobDone)
		w.log.Warn("hopper: claimed job arrived after its lease; not starting it", "queue", r.q.name, "job", r.c.ID,
			"lease", r.c.Token, "late_by", w.leaseMargin()-left)
		return until, false
	}
	return until, true
}

// retire forgets a job whose handling has ended.
func (w *Worker) retire(r *runningJob) {
	r.cancel(nil)
	w.mu.Lock()
	delete(w.running, r)
	w.mu.Unlock()
	w.handlers.Done()
}

// process runs one job's handler and records its outcome. For a completion
// sent without waiting (async), it returns the slot's next job.
func (w *Worker) process(s *slot, r *runningJob) (next *runningJob, async bool) {
	job, ctx := r.job, r.ctx
	tctx, cancel := context.WithTimeoutCause(ctx, job.Timeout, ErrJobTimeout)
	defer cancel()
	done := make(chan error, 1)
	if o := w.cfg.Observer; o != nil {
		w.runHook(r.q.name, job.ID, func() { o.JobStarted(ctx, job) })
	}
	r.started = time.Now()
	var ran time.Duration // written before the send on done, read after it
	go func() {
		t0 := time.Now()
		err := w.call(tctx, job)
		ran = time.Since(t0) // the handler alone, without scheduling delays
		done <- err
	}()
	select {
	case err := <-done:
		r.ran = ran
		w.noteRun(ran)
		if err != nil && errors.Is(context.Cause(tctx), ErrJobTimeout) && !errors.Is(err, ErrJobTimeout) {
			err = fmt.Errorf("%w after %s: %w", ErrJobTimeout, job.Timeout, err)
		}
		return w.finish(s, r, r.job, err, true)
	case <-tctx.Done():
		cause := context.Cause(tctx)
		timedOut := errors.Is(cause, ErrJobTimeout)
		if timedOut {
			// Fail the attempt now: a handler that ignores its ctx must not hold
			// the job hostage, and can no longer complete it.
			// The handler still runs and may read its Job: record the outcome
			// on a copy, so the handler's view does not change under it.
			snapshot := *job
			w.finish(s, r, &snapshot, fmt.Errorf("%w after %s", ErrJobTimeout, job.Timeout), false)
		}
		start := time.Now()
		err := <-done
		if !timedOut {
			// The lease was lost (or handed back at shutdown) while the handler
			// ran: tell the observer the attempt ended, unrecorded.
			w.observeUnrecorded(r, err)
		}
		level := slog.LevelDebug
		if time.Since(start) > time.Second {
			level = slog.LevelWarn // it ignored its ctx and held a slot meanwhile
		}
		w.log.Log(context.Background(), level, "hopper: handler returned after its job ended; outcome discarded",
			"queue", r.q.name, "job", job.ID, "cause", cause, "returned", err, "late_by", time.Since(start))
		return nil, false
	}
}

// call runs the handler, turning a panic into a *PanicError.
func (w *Worker) call(ctx context.Context, job *Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	return w.handler.ProcessJob(ctx, job)
}

// finish records the outcome of an attempt (herr is the handler's error).
// With async set (the handler has returned), a completion, failed attempt
// or snooze is handed to the ack loop without waiting: the slot's next job
// is returned, and the hooks run on the slot when the write's reply comes
// back (replied). Otherwise — a dead-lettering, or a timeout whose handler
// still runs — the write is waited for and the hooks run before returning.
//
// job is the Job the outcome is written for and hooks see: r.job, or a copy
// of it while the handler may still be running (a timeout).
func (w *Worker) finish(s *slot, r *runningJob, job *Job, herr error, async bool) (next *runningJob, sent bool) {
	if !r.state.CompareAndSwap(jobRunning, jobAcking) {
		// Lease lost or released meanwhile: nothing may be written.
		w.observeUnrecorded(r, herr)
		return nil, false
	}
	if herr == nil {
		kc := job.keepCompleted
		r.ack = store.Ack{ID: job.ID, Token: r.c.Token, Result: job.result(), KeepCount: kc.Count, KeepAgeMs: kc.Age}
		job.State, job.AttemptsMade, job.Result, job.FinishedAt = StateCompleted, job.AttemptsMade+1, r.ack.Result, w.clock()
		return w.sendAsync(s, r), true
	}
	ctx, q, tok := r.ctx, r.q, r.c.Token
	attempt := job.AttemptsMade + 1
	var (
		retryAfter *RetryAfterError
		permanent  *PermanentError
		panicErr   *PanicError
	)
	info := errInfo{Error: herr.Error()}
	if errors.As(herr, &panicErr) {
		info.Stack = panicErr.Stack
	}
	var f store.Fail
	var hook func()
	switch {
	case errors.As(herr, &retryAfter) && !retryAfter.Spend:
		delay := max(retryAfter.Delay, 0)
		b, _ := jsonString(info)
		f = store.Fail{ID: job.ID, Token: tok, DelayMs: delay.Milliseconds(), ErrJSON: b}
		job.State, job.LastError, job.DueAt = StateDelayed, info.Error, w.clock().Add(delay)
	case errors.As(herr, &permanent) || attempt >= job.MaxAttempts:
		if permanent != nil {
			info.Reason = "permanent failure: " + info.Error
		} else {
			info.Reason = fmt.Sprintf("attempts exhausted: %d of %d failed", attempt, job.MaxAttempts)
		}
		b, _ := jsonString(info)
		kd := job.keepDead
		nowArg := w.nowArg()
		status, err := w.ack(r, func(ctx context.Context) (int, error) {
			return q.st.Dead(ctx, nowArg, job.ID, tok, b, kd.Count, kd.Age, true)
		})
		job.State, job.AttemptsMade, job.LastError, job.Stack, job.DeadReason = StateDead, attempt, info.Error, info.Stack, info.Reason
		job.FinishedAt = w.clock()
		if w.cfg.OnDead != nil {
			hook = func() { w.cfg.OnDead(ctx, job, herr) }
		}
		w.report(r, job, herr, status, err, hook)
		r.state.Store(jobDone)
		return nil, false
	default:
		var delay time.Duration
		if retryAfter != nil { // FailAfter: the handler chose the delay
			delay = max(retryAfter.Delay, 0)
		} else {
			delay = w.retryDelay(job, attempt, herr)
		}
		b, _ := jsonString(info)
		f = store.Fail{ID: job.ID, Token: tok, DelayMs: delay.Milliseconds(), ErrJSON: b, Spend: true}
		job.State, job.AttemptsMade, job.LastError, job.Stack = StateFailed, attempt, info.Error, info.Stack
		job.DueAt = w.clock().Add(delay)
		if w.cfg.OnFailed != nil {
			hook = func() { w.cfg.OnFailed(ctx, job, herr) }
		}
	}
	r.fail, r.herr, r.hook = &f, herr, hook
	if async {
		return w.sendAsync(s, r), true
	}
	status, err := w.ack(r, func(ctx context.Context) (int, error) { return w.failOne(ctx, r) })
	w.failed(r, job, status, err)
	r.state.Store(jobDone)
	return nil, false
}

// errAckLoopStopped answers an outcome the ack loop no longer takes (a
// handler outlived shutdown): the slot writes it itself.
var errAckLoopStopped = errors.New("hopper: ack loop stopped")

// sendAsync hands an outcome to the ack loop, which writes it in a batch
// with the others of the moment (a completion call also claims the jobs the
// worker wants), and returns the slot's next job without waiting for the
// write. The reply comes back to the slot (replied).
func (w *Worker) sendAsync(s *slot, r *runningJob) *runningJob {
	w.mu.Lock()
	// The slot takes its next job (or is freed) before the outcome is sent,
	// so the call that carries it claims for this slot too.
	next := w.nextLocked()
	closed := w.acksClosed
	if !closed {
		w.pendAcks++
	}
	s.pending++
	w.mu.Unlock()
	if closed {
		w.replied(s, slotReply{r: r, rep: ackReply{err: errAckLoopStopped}})
		return next
	}
	w.acks <- ackReq{slot: s, r: r}
	return next
}

// completeOne writes one completion in its own call.
func (w *Worker) completeOne(ctx context.Context, r *runningJob) (int, error) {
	st, _, err := r.q.st.Complete(ctx, w.nowArg(), []store.Ack{r.ack}, 0, 0)
	if err != nil {
		return 0, err
	}
	return st[0], nil
}

// failOne writes one failed attempt or snooze in its own call.
func (w *Worker) failOne(ctx context.Context, r *runningJob) (int, error) {
	st, err := r.q.st.RetryBatch(ctx, w.nowArg(), []store.Fail{*r.fail})
	if err != nil {
		return 0, err
	}
	return st[0], nil
}

// replied finishes an outcome sent by sendAsync once the ack loop answered:
// it retries a failed batch write alone (while the lease lasts), then logs,
// runs the hooks and forgets the job. It runs on the job's slot.
func (w *Worker) replied(s *slot, sr slotReply) {
	s.pending--
	r, st, err := sr.r, sr.rep.status, sr.rep.err
	if r.fail == nil {
		if err != nil {
			st, err = w.ack(r, func(ctx context.Context) (int, error) { return w.completeOne(ctx, r) })
		}
		var hook func()
		if w.cfg.OnCompleted != nil {
			hook = func() { w.cfg.OnCompleted(r.ctx, r.job) }
		}
		w.report(r, r.job, nil, st, err, hook)
	} else {
		if err != nil {
			st, err = w.ack(r, func(ctx context.Context) (int, error) { return w.failOne(ctx, r) })
		}
		w.failed(r, r.job, st, err)
	}
	r.state.Store(jobDone)
	w.retire(r)
}

// failed reports a written failed attempt or snooze; a worker promotes its
// own retries on time.
func (w *Worker) failed(r *runningJob, job *Job, status int, err error) {
	if err == nil && status == store.LeaseOK && r.fail.DelayMs > 0 {
		w.noteDueIn(time.Duration(r.fail.DelayMs) * time.Millisecond)
	}
	w.report(r, job, r.herr, status, err, r.hook)
}

// report logs an attempt's recorded outcome and runs its hook and the
// observer.
func (w *Worker) report(r *runningJob, job *Job, herr error, status int, err error, hook func()) {
	q := r.q
	attempt := job.AttemptsMade
	if herr != nil && job.State == StateDelayed {
		attempt++ // a snooze spends no attempt
	}
	switch {
	case err != nil:
		w.log.Error("hopper: could not record job outcome; the job is re-run when its lease expires",
			"queue", q.name, "job", job.ID, "attempt", attempt, "lease", r.c.Token, "err", err)
	case status == store.LeaseLost:
		w.log.Warn("hopper: job outcome refused: lease lost (the job was recovered, released or removed)",
			"queue", q.name, "job", job.ID, "attempt", attempt, "lease", r.c.Token)
	default:
		if herr != nil {
			w.log.Debug("hopper: job attempt failed", "queue", q.name, "job", job.ID, "attempt", attempt,
				"state", job.State, "err", herr)
		}
		if hook != nil {
			w.runHook(q.name, job.ID, hook)
		}
	}
	if o := w.cfg.Observer; o != nil && !r.started.IsZero() {
		d := r.ran
		if d == 0 {
			d = time.Since(r.started) // a timeout: the handler still runs
		}
		out := Outcome{State: job.State, Duration: d, Err: herr, Recorded: err == nil && status != store.LeaseLost, RecordErr: err}
		w.runHook(q.name, job.ID, func() { o.JobFinished(r.ctx, job, out) })
	}
}

// observeUnrecorded tells the Observer that an attempt ended without its
// outcome being written, because the job's lease was lost (or the job was
// handed back at shutdown) before the handler returned.
func (w *Worker) observeUnrecorded(r *runningJob, herr error) {
	o := w.cfg.Observer
	if o == nil || r.started.IsZero() {
		return
	}
	if herr == nil {
		herr = ErrLeaseLost
	}
	out := Outcome{State: StateActive, Duration: time.Since(r.started), Err: herr, Recorded: false}
	w.runHook(r.q.name, r.job.ID, func() { o.JobFinished(r.ctx, r.job, out) })
}

func (w *Worker) runHook(queue, id string, hook func()) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("hopper: hook panicked", "queue", queue, "job", id, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	hook()
}

// ack writes an outcome, retrying transient Redis errors with backoff while
// the lease can still be valid (the heartbeat keeps extending it meanwhile).
// When the next retry would fall past the lease, it makes one last attempt
// at once and then gives up: a failed call may have landed (only its reply
// was lost, or the process was frozen while it waited), and the acking
// scripts answer a re-run "already done by this token" (or "lease lost"), so
// that attempt tells whether the outcome was recorded rather than leaving it
// unknown.
func (w *Worker) ack(r *runningJob, op func(ctx context.Context) (int, error)) (int, error) {
	var delay time.Duration
	for last := false; ; {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseDuration)
		s, err := op(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		if last {
			return 0, err
		}
		w.mu.Lock()
		until := r.leaseUntil
		w.mu.Unlock()
		delay = nextErrDelay(delay)
		if time.Now().Add(delay).After(until) {
			last, delay = true, 0
		}
		w.log.Warn("hopper: recording job outcome failed; retrying", "queue", r.q.name, "job", r.c.ID, "err", err)
		time.Sleep(delay) // bounded by the lease; nothing else to wait for
	}
}

// maxAckBatch bounds the outcomes one ack call carries.
const maxAckBatch = 256

// answer delivers an ack call's reply for one request to the slot that
// sent it.
func (w *Worker) answer(req ackReq, rep ackReply) {
	req.slot.replies <- slotReply{r: req.r, rep: rep}
}

// ackLoop writes the completions and failures handed to it, batched per
// queue: what arrives while one call is in flight goes in the next, so
// under load a job costs a fraction of a round trip, while a lone outcome
// is written at once. Each outcome in a batch is fenced by its own lease
// token and refused alone if stale. The loop stops with the other loops,
// after the handlers have drained; it answers every request it accepted.
func (w *Worker) ackLoop() {
	defer w.loops.Done()
	batch := make([]ackReq, 0, maxAckBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-w.acks:
			batch = append(batch, req)
		case <-w.loopsCtx.Done():
			w.mu.Lock()
			w.acksClosed = true
			left := w.pendAcks
			w.mu.Unlock()
			// Requests counted before the close are answered: their senders
			// are committed to sending them.
			for ; left > 0; left-- {
				w.flushAcks(append(batch[:0], <-w.acks))
			}
			return
		}
	more:
		for len(batch) < maxAckBatch {
			select {
			case req := <-w.acks:
				batch = append(batch, req)
			default:
				break more
			}
		}
		w.flushAcks(batch)
	}
}

func (w *Worker) flushAcks(batch []ackReq) {
	byQueue := make(map[*workerQueue][]ackReq, 1)
	for _, req := range batch {
		byQueue[req.r.q] = append(byQueue[req.r.q], req)
	}
	for q, all := range byQueue {
		var reqs, fails []ackReq
		for _, req := range all {
			if req.r.fail != nil {
				fails = append(fails, req)
			} else {
				reqs = append(reqs, req)
			}
		}
		if len(fails) > 0 {
			w.flushFails(q, fails)
		}
		if len(reqs) == 0 {
			continue
		}
		acks := make([]store.Ack, len(reqs))
		for i, req := range reqs {
			acks[i] = req.r.ack
		}
		// Single-queue workers claim their next jobs in the same call (with
		// several queues the fetch loop chooses the queue, so weights hold).
		want := 0
		if len(w.queues) == 1 && !w.intakeClosed() {
			w.mu.Lock()
			want = w.reserveLocked()
			w.mu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseDuration)
		sent := time.Now()
		statuses, claimed, err := q.st.Complete(ctx, w.nowArg(), acks, want, w.cfg.LeaseDuration.Milliseconds())
		cancel()
		var jobs []store.Claimed
		if err == nil {
			w.noteCall(time.Since(sent))
			if want > 0 {
				w.noteClock(claimed.Now, sent)
				w.noteDue(claimed.NextDue)
				jobs = claimed.Jobs
			}
		}
		w.dispatch(q, jobs, sent, want)
		if err == nil && claimed.Paused {
			w.releaseBufferedOnPause(q)
		}
		w.mu.Lock()
		w.pendAcks -= len(reqs)
		w.mu.Unlock()
		for i, r := range reqs {
			rep := ackReply{err: err}
			if err == nil {
				rep.status = statuses[i]
			}
			w.answer(r, rep)
		}
	}
	signal(w.slotFreed)
}

// flushFails writes one queue's batch of failed attempts and snoozes in one
// script call and answers each request.
func (w *Worker) flushFails(q *workerQueue, reqs []ackReq) {
	fails := make([]store.Fail, len(reqs))
	for i, req := range reqs {
		fails[i] = *req.r.fail
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.LeaseDuration)
	statuses, err := q.st.RetryBatch(ctx, w.nowArg(), fails)
	cancel()
	w.mu.Lock()
	w.pendAcks -= len(reqs)
	w.mu.Unlock()
	for i, r := range reqs {
		rep := ackReply{err: err}
		if err == nil {
			rep.status = statuses[i]
		}
		w.answer(r, rep)
	}
}

// retryDelay picks the backoff for a failed attempt.
func (w *Worker) retryDelay(job *Job, attempt int, err error) time.Duration {
	now := w.clock()
	var d time.Duration
	switch {
	case job.customBackoff && job.Backoff.kind == backoffCustom:
		if f := w.cfg.Backoffs[job.Backoff.name]; f != nil {
			d = f(attempt, err)
		} else {
			w.log.Warn("hopper: job names an unregistered custom backoff; using the worker's default",
				"queue", job.Queue, "job", job.ID, "backoff", job.Backoff.name)
			d = w.defaultDelay(now, attempt, err)
		}
	case job.customBackoff:
		d = job.Backoff.Delay(now, attempt)
	default:
		d = w.defaultDelay(now, attempt, err)
	}
	return max(d, 0)
}

func (w *Worker) defaultDelay(now time.Time, attempt int, err error) time.Duration {
	if w.cfg.DefaultBackoff != nil {
		return w.cfg.DefaultBackoff(attempt, err)
	}
	return defaultBackoff().Delay(now, attempt)
}

// loseLease marks r's lease lost and cancels its handler.
func (w *Worker) loseLease(r *runningJob, why string) {
	for {
		s := r.state.Load()
		if s == jobDone {
			return
		}
		if r.state.CompareAndSwap(s, jobDone) {
			break
		}
	}
	w.log.Warn("hopper: lease lost; cancelling the handler", "queue", r.q.name, "job", r.c.ID,
		"lease", r.c.Token, "why", why)
	r.cancel(ErrLeaseLost)
}

func (w *Worker) heartbeatLoop() {
	defer w.loops.Done()
	t := time.NewTimer(w.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.loopsCtx.Done():
			return
		}
		t.Reset(w.heartbeat())
	}
}

// heartbeat extends the leases of all running jobs, one call per queue, and
// cancels the handlers whose lease is lost. It returns the time until the
// next heartbeat.
func (w *Worker) heartbeat() time.Duration {
	type item struct {
		r *runningJob
		l store.Lease
	}
	byQueue := map[*workerQueue][]item{}
	w.mu.Lock()
	for r := range w.running {
		if r.state.Load() != jobDone {
			byQueue[r.q] = append(byQueue[r.q], item{r, store.Lease{ID: r.c.ID, Token: r.c.Token}})
		}
	}
	w.mu.Unlock()
	for q, items := range byQueue {
		ls := make([]store.Lease, len(items))
		for i, it := range items {
			ls[i] = it.l
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(w.loopsCtx, w.cfg.HeartbeatInterval)
		res, err := q.st.Extend(ctx, w.nowArg(), w.cfg.LeaseDuration.Milliseconds(), ls)
		cancel()
		if err != nil {
			if w.loopsCtx.Err() == nil {
				w.log.Warn("hopper: heartbeat failed", "queue", q.name, "jobs", len(ls), "err", err)
			}
			continue
		}
		w.mu.Lock()
		for i, s := range res {
			if s == store.LeaseOK {
				items[i].r.leaseUntil = sent.Add(w.cfg.LeaseDuration)
			}
		}
		w.mu.Unlock()
		for i, s := range res {
			if s != store.LeaseOK {
				w.loseLease(items[i].r, "heartbeat refused: the job was recovered, released or removed")
			}
		}
	}
	return w.cfg.HeartbeatInterval
}

// leaseMargin is how long before a lease's local deadline the watchdog
// cancels a handler whose lease could not be extended.
func (w *Worker) leaseMargin() time.Duration { return w.cfg.LeaseDuration / 10 }

// watchdogLoop cancels handlers whose lease may expire before a heartbeat
// succeeds, so that recovery never hands a job to another worker while this
// one still runs it. It runs apart from the heartbeat because a heartbeat
// stuck on an unreachable server must not delay it; it sends nothing to Redis.
func (w *Worker) watchdogLoop() {
	defer w.loops.Done()
	t := time.NewTicker(max(w.leaseMargin()/2, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.loopsCtx.Done():
			return
		}
		now := time.Now()
		var expiring []*runningJob
		dropped := 0
		w.mu.Lock()
		for r := range w.running {
			if r.state.Load() != jobDone && !now.Before(r.leaseUntil.Add(-w.leaseMargin())) {
				expiring = append(expiring, r)
			}
		}
		if len(expiring) > 0 {
			// Heartbeats are failing (Redis unreachable): the jobs claimed
			// ahead could not be acknowledged either, so none is started; they
			// are recovered like the running ones. Done under mu, before the
			// running handlers are cancelled, so a slot freed by the cancel
			// finds them dropped.
			for r := range w.running {
				if r.state.CompareAndSwap(jobQueued, jobDone) {
					r.cancel(ErrLeaseLost)
					dropped++
				}
			}
		}
		w.mu.Unlock()
		if dropped > 0 {
			w.log.Warn("hopper: heartbeats failed; dropping the jobs claimed ahead (they are recovered when their leases expire)",
				"jobs", dropped)
		}
		for _, r := range expiring {
			w.loseLease(r, "lease about to expire: heartbeats failed")
		}
	}
}

func (w *Worker) maintenanceLoop() {
	defer w.loops.Done()
	pass := time.NewTimer(time.Hour)
	defer pass.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	quiet := w.maintain()
	for {
		// Quiet queues (nothing leased, ready or moved anywhere) need no
		// recovery: the interval stretches to quietFactor PollIntervals. Due
		// jobs and schedule ticks keep their own timer below, and new work
		// wakes the blocking reader, not this loop.
		interval := w.cfg.PollInterval
		if quiet && w.idle.Load() {
			interval = quietFactor * w.cfg.PollInterval
		}
		nextPass := time.Now().Add(interval)
	wait:
		w.mu.Lock()
		next := w.nextDue
		w.mu.Unlock()
		if !next.IsZero() {
			due.Reset(max(time.Until(next), 0))
		} else {
			due.Stop()
		}
		pass.Reset(max(time.Until(nextPass), 0))
		select {
		case <-pass.C:
		case <-due.C:
			w.mu.Lock()
			if !w.nextDue.After(time.Now()) {
				w.nextDue = time.Time{}
			}
			w.mu.Unlock()
		case <-w.dueKick:
			goto wait
		case <-w.loopsCtx.Done():
			return
		}
		quiet = w.maintain()
	}
}

// quietFactor bounds how far a worker whose queues are quiet stretches its
// maintenance interval, in PollIntervals.
const quietFactor = 4

// maintain promotes due jobs, fires due schedule ticks and recovers expired
// leases on every queue, then wakes the fetch loop if jobs are ready. It
// reports whether every queue was quiet: no job active, ready or moved.
func (w *Worker) maintain() (quiet bool) {
	ctx := w.loopsCtx
	quiet, ready := true, false
	info := w.info()
	for _, q := range w.queues {
		var redisNow time.Time
		nextSched := int64(-1)
		leaseDue := int64(-1)
		schedules := int64(-1) // schedules stored in the queue; -1 unknown
		// The first batch is small, and the fetch loop is woken after each
		// batch, so that the first due jobs start while later ones are still
		// being promoted (one 1,000-job call takes milliseconds).
		limit := min(max(w.cfg.Concurrency, 100), promoteBatch)
		for i := 0; i < 10; i++ { // bounded: 10 batches per pass
			sent := time.Now()
			send := info
			if info == q.sentInfo {
				send = "" // unchanged: the script only refreshes the registration
			}
			r, err := q.st.PromoteAndRegister(ctx, w.nowArg(), limit, "", w.id, send, w.registryTTL().Milliseconds())
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("hopper: promoting due jobs failed", "queue", q.name, "err", err)
				}
				quiet, ready = false, true // unknown: fetch, and look again soon
				break
			}
			switch {
			case send != "":
				q.sentInfo = send
			case r.Fresh:
				q.sentInfo = "" // the registration had expired: send the info next pass
			}
			w.noteClock(r.Now, sent)
			w.noteDue(r.NextDue)
			redisNow, nextSched, leaseDue, schedules = time.UnixMilli(r.Now), r.NextSched, r.LeaseDue, r.Schedules
			if r.Moved > 0 {
				signal(w.wake)
			}
			if r.Moved > 0 || r.Ready > 0 || r.LeaseDue >= 0 {
				quiet = false
			}
			if r.Ready > 0 {
				ready = true
			}
			if r.Moved < limit {
				break
			}
			limit = promoteBatch
		}
		if len(q.kept) > 0 && (!q.keptDone || (schedules >= 0 && schedules < int64(len(q.kept)))) {
			w.keepSchedules(ctx, q)
			if q.keptDone && !w.cfg.DisableScheduler {
				nextSched = 0 // just written: read the schedules' ticks now
			}
		}
		if !w.cfg.DisableScheduler && nextSched >= 0 {
			if nextSched <= redisNow.UnixMilli() {
				// Only now read the schedules: an idle queue with schedules costs
				// nothing beyond the promote call.
				_, next, err := runSchedules(ctx, q.st, w.nowArg(), redisNow, w.log.With("queue", q.name))
				if err != nil && ctx.Err() == nil {
					w.log.Warn("hopper: running schedules failed", "queue", q.name, "err", err)
				}
				nextSched = next
			}
			w.noteDue(nextSched)
		}
		for i := 0; i < 10 && leaseDue >= 0 && leaseDue <= redisNow.UnixMilli(); i++ {
			requeued, dead, err := q.st.Recover(ctx, w.nowArg(), w.cfg.MaxStalls, recoverBatch,
				DefaultKeepDeadCount, DefaultKeepDeadAge.Milliseconds())
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("hopper: recovering expired leases failed", "queue", q.name, "err", err)
				}
				break
			}
			if len(requeued) > 0 {
				w.log.Warn("hopper: recovered jobs whose lease expired", "queue", q.name, "jobs", requeued)
				ready = true
			}
			if len(dead) > 0 {
				w.log.Error("hopper: dead-lettered jobs that stalled too often", "queue", q.name,
					"jobs", dead, "max_stalls", w.cfg.MaxStalls)
				w.reportStalledDead(ctx, q, dead)
			}
			if len(requeued)+len(dead) < recoverBatch {
				break
			}
		}
	}
	if ready {
		signal(w.wake)
	}
	return quiet
}

// reportStalledDead calls OnDead for jobs this worker's recovery pass
// dead-lettered (their own workers crashed or hung), with an error wrapping
// ErrJobStalled. The jobs are read back first, so the hook sees them as
// stored.
func (w *Worker) reportStalledDead(ctx context.Context, q *workerQueue, ids []string) {
	if w.cfg.OnDead == nil {
		return
	}
	recs, err := q.st.GetMany(ctx, ids)
	if err != nil {
		w.log.Warn("hopper: reading stalled dead jobs for OnDead failed", "queue", q.name, "jobs", ids, "err", err)
		return
	}
	for _, r := range recs {
		job, err := jobFromRecord(q.name, r)
		if err != nil {
			continue
		}
		herr := fmt.Errorf("%w: %s", ErrJobStalled, job.DeadReason)
		w.runHook(q.name, job.ID, func() { w.cfg.OnDead(ctx, job, herr) })
	}
}

// checkEviction reads Redis' maxmemory-policy (INFO memory, one round trip)
// and warns loudly when it may evict keys: an evicted job hash or state set
// loses jobs silently. With StrictEviction it returns ErrEvictingRedis
// instead. A server that does not report the policy (miniredis, some
// managed services) is not judged.
func (w *Worker) checkEviction(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := w.client.Info(cctx, "memory").Result()
	if err != nil {
		w.log.Debug("hopper: could not read maxmemory-policy", "err", err)
		return nil
	}
	policy := ""
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "maxmemory_policy:"); ok {
			policy = v
		}
	}
	if policy == "" || policy == "noeviction" {
		return nil
	}
	if w.cfg.StrictEviction {
		return fmt.Errorf("%w: maxmemory-policy is %s", ErrEvictingRedis, policy)
	}
	w.log.Error("hopper: Redis maxmemory-policy may evict keys: jobs can be lost silently when memory is full; "+
		"set maxmemory-policy noeviction for the Redis that holds hopper's queues", "maxmemory_policy", policy)
	return nil
}

// registryTTL is how long a worker stays listed without a maintenance pass:
// three of its longest intervals.
func (w *Worker) registryTTL() time.Duration { return 3 * quietFactor * w.cfg.PollInterval }

// workerInfo is the JSON a worker registers in each of its queues.
type workerInfo struct {
	ID          string   `json:"id"`
	Host        string   `json:"host"`
	PID         int      `json:"pid"`
	Concurrency int      `json:"concurrency"`
	Active      int      `json:"active"`
	Queues      []string `json:"queues"`
	Started     int64    `json:"started"`
	// TTL is the registration's lifetime (ms): the registry's expiry score
	// minus TTL is when the worker last refreshed it.
	TTL int64 `json:"ttl"`
}

func (w *Worker) info() string {
	names := make([]string, len(w.queues))
	for i, q := range w.queues {
		names[i] = q.name
	}
	b, _ := json.Marshal(workerInfo{ID: w.id, Host: w.host, PID: os.Getpid(), Concurrency: w.cfg.Concurrency,
		Active: w.active(), Queues: names, Started: w.started.UnixMilli(), TTL: w.registryTTL().Milliseconds()})
	return string(b)
}

// recoverBatch bounds the jobs one recover call handles.
const recoverBatch = 100

// blockLoop is a blocking reader: while the worker is idle it waits on the
// queues' markers with BZPOPMIN and wakes the fetch loop.
func (w *Worker) blockLoop(g *blockGroup) {
	defer w.loops.Done()
	var errDelay time.Duration
	for {
		select {
		case <-g.idle:
		case <-w.intake:
			return
		}
		for w.idle.Load() && !w.intakeClosed() {
			res, err := w.client.BZPopMin(w.loopsCtx, w.cfg.PollInterval, g.keys...).Result()
			if w.intakeClosed() {
				return
			}
			if errors.Is(err, redis.Nil) {
				continue // timed out; the maintenance pass covers missed markers
			}
			if err != nil {
				errDelay = nextErrDelay(errDelay)
				w.log.Warn("hopper: blocking wait failed; retrying", "err", err, "retry_in", errDelay)
				if !sleep(errDelay, w.intake) {
					return
				}
				continue
			}
			errDelay = 0
			switch {
			case res.Key == g.wakeKey:
				// A stale wake-up of ours; the shutdown check above handles a real one.
			case res.Member == "0":
				if w.full() {
					// No free slot: hand the wake-up on to another worker.
					w.client.ZAdd(w.loopsCtx, res.Key, redis.Z{Score: 0, Member: "0"})
				}
				signal(w.wake)
			default:
				w.noteDue(int64(res.Score))
			}
		}
	}
}
