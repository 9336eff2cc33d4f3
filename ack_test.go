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

// cmdHook adapts a function to a go-redis hook on single commands
// (pipelines and dials pass through).
type cmdHook func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error

func (cmdHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { return h(ctx, cmd, next) }
}
func (cmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// isScript reports whether cmd runs sc (by SHA or by source).
func isScript(cmd redis.Cmder, sc *scripts.Script) bool {
	a := cmd.Args()
	return len(a) > 1 && (a[1] == sc.Hash() || a[1] == sc.Src)
}

// lostReply makes the first call of sc (every call, with every) land in
// Redis and then fail as if its reply were lost, after hold: a network cut
// after the request, or the worker's process frozen while it waited.
func lostReply(sc *scripts.Script, hold time.Duration, every bool) cmdHook {
	var fired atomic.Bool
	return func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		if !isScript(cmd, sc) || (!fired.CompareAndSwap(false, true) && !every) {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil {
			fired.Store(false) // it did not land (NOSCRIPT): lose the next one
			return err
		}
		time.Sleep(hold)
		err := errors.New("read tcp: i/o timeout (a lost reply)")
		cmd.SetErr(err)
		return err
	}
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
		h.client.AddHook(lostReply(scripts.Complete, lease+300*time.Millisecond, false))
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
		h.client.AddHook(lostReply(scripts.Complete, lease+100*time.Millisecond, true))
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

// Failed attempts are written in batches, like completions: failures that
// arrive while a call is in flight share the next one. Every job still
// fails once, is retried and completes exactly once.
func TestFailuresAreBatched(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		var calls atomic.Int64
		h.client.AddHook(cmdHook(func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
			if isScript(cmd, scripts.Retry) {
				calls.Add(1)
			}
			return next(ctx, cmd)
		}))
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
		got := calls.Load()
		t.Logf("%d failures written in %d retry script calls", n, got)
		require.Less(t, got, int64(n), "failures must share script calls")
	})
}

// slowClaim delays the reply of the first fetch that claims a job, after it
// ran in Redis (a partition that held the reply, or a frozen process), and
// reports on fired when it holds one.
func slowClaim(hold time.Duration, fired *atomic.Bool) cmdHook {
	return func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		err := next(ctx, cmd)
		if v, ok := cmd.(*redis.Cmd); ok && err == nil && isScript(cmd, scripts.Fetch) {
			if rows, _ := v.Val().([]any); len(rows) > 3 && fired.CompareAndSwap(false, true) {
				time.Sleep(hold)
			}
		}
		return err
	}
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
		var fired atomic.Bool
		slowClient.AddHook(slowClaim(3*time.Second, &fired))
		logs := &syncbuf.Buffer{}
		rec := newRecorder(nil)
		a, err := NewWorker(slowClient, "late", rec, &WorkerConfig{Prefix: h.prefix, Concurrency: 1,
			LeaseDuration: lease, PollInterval: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		require.NoError(t, err)
		h.start(a)
		q := h.queue("late", nil)
		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "j"})
		require.NoError(t, err)
		waitFor(t, 5*time.Second, "worker a's claim", fired.Load)
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
