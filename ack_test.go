package hopper

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/scripts"
	"github.com/hopperq/hopper/internal/syncbuf"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// lostReply makes the first call of one script land in Redis and then fail
// as if its reply were lost, after hold: a network cut after the request, or
// the worker's process frozen while it waited.
type lostReply struct {
	sc    *scripts.Script
	hold  time.Duration
	every bool // lose every reply, not only the first
	fired atomic.Bool
}

func (*lostReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		ours := len(args) > 1 && (args[1] == h.sc.Hash() || args[1] == h.sc.Src)
		if !ours || (!h.fired.CompareAndSwap(false, true) && !h.every) {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil {
			h.fired.Store(false) // it did not land (NOSCRIPT): lose the next one
			return err
		}
		time.Sleep(h.hold)
		err := errors.New("read tcp: i/o timeout (a lost reply)")
		cmd.SetErr(err)
		return err
	}
}
func (*lostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

type outcomes struct {
	mu  sync.Mutex
	all []Outcome
}

func (*outcomes) JobStarted(context.Context, *Job) {}
func (o *outcomes) JobFinished(_ context.Context, _ *Job, out Outcome) {
	o.mu.Lock()
	o.all = append(o.all, out)
	o.mu.Unlock()
}
func (o *outcomes) get() []Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Outcome(nil), o.all...)
}

// An acknowledgement that landed but whose reply was lost until past the
// lease: the worker's last, immediate attempt is answered "already done by
// this token", so the outcome is known to be recorded and the hooks fire
// once. (Found by the chaos soak: a SIGSTOPped worker's completion had
// landed before the stop, and it reported the job as unrecorded.)
func TestAckReplyLostPastLease(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		const lease = 600 * time.Millisecond
		h.client.AddHook(&lostReply{sc: scripts.Complete, hold: lease + 300*time.Millisecond})
		obs := &outcomes{}
		var completed atomic.Int32
		q := h.queue("ackreply", nil)
		h.worker("ackreply", HandlerFunc(func(context.Context, *Job) error { return nil }), &WorkerConfig{
			Concurrency: 1, LeaseDuration: lease, PollInterval: time.Second, Observer: obs,
			OnCompleted: func(context.Context, *Job) { completed.Add(1) },
		})
		_, err := q.Add(context.Background(), "x", nil, &JobOptions{ID: "a"})
		require.NoError(t, err)
		waitFor(t, 5*time.Second, "the attempt's outcome", func() bool { return len(obs.get()) == 1 })
		out := obs.get()[0]
		require.Equal(t, StateCompleted, out.State)
		require.True(t, out.Recorded, "the completion landed: the worker must know it")
		require.NoError(t, out.RecordErr)
		require.Equal(t, int32(1), completed.Load())
		j, err := q.Job(context.Background(), "a")
		require.NoError(t, err)
		require.Equal(t, StateCompleted, j.State)
		require.Equal(t, 1, j.AttemptsMade)
	})
}

// When no reply comes back at all, the outcome is unknown: Recorded is
// false and RecordErr says why, although the completion may have landed (it
// did here).
func TestAckOutcomeUnknown(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		const lease = 500 * time.Millisecond
		h.client.AddHook(&lostReply{sc: scripts.Complete, hold: lease + 100*time.Millisecond, every: true})
		obs := &outcomes{}
		q := h.queue("ackunknown", nil)
		h.worker("ackunknown", HandlerFunc(func(context.Context, *Job) error { return nil }), &WorkerConfig{
			Concurrency: 1, LeaseDuration: lease, PollInterval: time.Second, Observer: obs,
		})
		_, err := q.Add(context.Background(), "x", nil, &JobOptions{ID: "a"})
		require.NoError(t, err)
		waitFor(t, 5*time.Second, "the attempt's outcome", func() bool { return len(obs.get()) == 1 })
		out := obs.get()[0]
		require.False(t, out.Recorded)
		require.Error(t, out.RecordErr)
		j, err := q.Job(context.Background(), "a")
		require.NoError(t, err)
		require.Equal(t, StateCompleted, j.State, "the write landed although its reply never came")
	})
}

// scriptCalls counts the calls of one script sent through a client.
type scriptCalls struct {
	sc *scripts.Script
	n  atomic.Int64
}

func (*scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && (a[1] == h.sc.Hash() || a[1] == h.sc.Src) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (*scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Failed attempts are written in batches, like completions: failures that
// arrive while a call is in flight share the next one. Every job still
// fails once, is retried and completes exactly once.
func TestFailuresAreBatched(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		calls := &scriptCalls{sc: scripts.Retry}
		h.client.AddHook(calls)
		const n = 200
		q := h.queue("failbatch", nil)
		rec := newRecorder(func(_ context.Context, j *Job) error {
			if j.AttemptsMade == 0 {
				return errors.New("first attempt fails")
			}
			return nil
		})
		jobs := make([]NewJob, n)
		for i := range jobs {
			jobs[i] = NewJob{Name: "x", Options: &JobOptions{Attempts: 2}}
		}
		_, err := q.AddBulk(context.Background(), jobs)
		require.NoError(t, err)
		h.worker("failbatch", rec, &WorkerConfig{Concurrency: 20, LeaseDuration: 5 * time.Second, PollInterval: time.Second,
			DefaultBackoff: func(int, error) time.Duration { return 0 }})
		waitFor(t, 20*time.Second, "all retried and completed", func() bool {
			c, err := q.Counts(context.Background())
			require.NoError(t, err)
			return c.Completed == n
		})
		require.Equal(t, 2*n, rec.total(), "each job ran twice: a failure, then a success")
		got := calls.n.Load()
		t.Logf("%d failures written in %d retry script calls", n, got)
		require.Less(t, got, int64(n), "failures must share script calls")
	})
}

// slowClaim delays the reply of the first fetch that claims a job, after it
// ran in Redis: a partition that held the reply, or a frozen process.
type slowClaim struct {
	hold  time.Duration
	fired atomic.Bool
	done  chan struct{} // closed when the delayed reply is handed back
}

func (*slowClaim) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slowClaim) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		a := cmd.Args()
		if len(a) < 2 || (a[1] != scripts.Fetch.Hash() && a[1] != scripts.Fetch.Src) {
			return err
		}
		if v, ok := cmd.(*redis.Cmd); ok && err == nil {
			if rows, _ := v.Val().([]any); len(rows) > 3 && h.fired.CompareAndSwap(false, true) {
				time.Sleep(h.hold)
				close(h.done)
			}
		}
		return err
	}
}
func (*slowClaim) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A claim whose reply arrives after its lease ran out is not started: the
// job was recovered and ran elsewhere meanwhile, and a second run would only
// have its outcome refused. (Found by the chaos soak: a worker partitioned
// while its fetch was in flight started the job 6 s later.)
func TestLateClaimIsNotStarted(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		const lease = 500 * time.Millisecond
		ctx := context.Background()
		slowClient := cloneClient(t, h.client)
		hook := &slowClaim{hold: 3 * time.Second, done: make(chan struct{})}
		slowClient.AddHook(hook)
		logs := &syncbuf.Buffer{}
		rec := newRecorder(nil)
		a, err := NewWorker(slowClient, "late", rec, &WorkerConfig{Prefix: h.prefix, Concurrency: 1,
			LeaseDuration: lease, PollInterval: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		require.NoError(t, err)
		h.start(a)
		q := h.queue("late", nil)
		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "j"})
		require.NoError(t, err)
		waitFor(t, 5*time.Second, "worker a's claim", func() bool { return hook.fired.Load() })
		h.worker("late", rec, &WorkerConfig{Concurrency: 1, LeaseDuration: lease, PollInterval: time.Second})
		j := waitState(t, q, "j", StateCompleted, 10*time.Second)
		require.Equal(t, 1, j.Stalls, "recovered once: worker a's lease expired unused")
		waitFor(t, 5*time.Second, "worker a to drop its late claim", func() bool {
			return strings.Contains(logs.String(), "claimed job arrived after its lease; not starting it")
		})
		require.Equal(t, 1, rec.count("j"), "the late claim must not run the job again")
	})
}

// cloneClient returns a new client with c's options, closed with the test.
func cloneClient(t *testing.T, c redis.UniversalClient) redis.UniversalClient {
	var out redis.UniversalClient
	switch c := c.(type) {
	case *redis.Client:
		o := *c.Options()
		out = redis.NewClient(&o)
	case *redis.ClusterClient:
		o := *c.Options()
		out = redis.NewClusterClient(&o)
	default:
		t.Fatalf("cannot clone a %T", c)
	}
	t.Cleanup(func() { _ = out.Close() })
	return out
}
