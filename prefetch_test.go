package hopper

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/scripts"
	"github.com/hopperq/hopper/internal/syncbuf"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// prefetchSetup adds before quick jobs, one job named "block", then after
// quick jobs. The handler runs quick jobs at once and holds "block" until
// release is closed (or its ctx ends). It returns the jobs in order.
func prefetchSetup(t *testing.T, q *Queue, before, after int) []*Job {
	t.Helper()
	var nj []NewJob
	for i := range before {
		nj = append(nj, NewJob{Name: "quick", Payload: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	nj = append(nj, NewJob{Name: "block"})
	for i := range after {
		nj = append(nj, NewJob{Name: "quick", Payload: fmt.Appendf(nil, `{"i":%d}`, before+1+i)})
	}
	jobs, err := q.AddBulk(context.Background(), nj)
	require.NoError(t, err)
	return jobs
}

func blockingRecorder(blocked chan<- struct{}, release <-chan struct{}) *recorder {
	return newRecorder(func(ctx context.Context, job *Job) error {
		if job.Name != "block" {
			return nil
		}
		blocked <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
}

func activeCount(t *testing.T, q *Queue) int64 {
	t.Helper()
	c, err := q.Counts(context.Background())
	require.NoError(t, err)
	return c.Active
}

// A worker of short jobs claims jobs ahead of its free slots (bounded by
// Prefetch), runs each once, and hands the ones it holds back at shutdown
// without spending an attempt or counting a stall.
func TestPrefetchClaimsAheadAndHandsBackAtShutdown(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("pf", nil)
		jobs := prefetchSetup(t, q, 40, 200)
		blocked, release := make(chan struct{}, 1), make(chan struct{})
		rec := blockingRecorder(blocked, release)
		w := h.newWorker("pf", rec, &WorkerConfig{Concurrency: 1, Prefetch: 20, LeaseDuration: 5 * time.Second,
			PollInterval: time.Second})
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		<-blocked
		for _, j := range jobs[:40] {
			waitState(t, q, j.ID, StateCompleted, 5*time.Second) // their completions have landed
		}
		// The only slot is held; the jobs claimed ahead wait for it, leased.
		waitFor(t, 5*time.Second, "jobs claimed ahead of the busy slot", func() bool { return activeCount(t, q) > 1 })
		require.LessOrEqual(t, activeCount(t, q), int64(1+20), "at most Prefetch jobs claimed ahead")

		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, w.Shutdown(sctx), context.DeadlineExceeded)
		require.NoError(t, <-done)

		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 0, c.Active, "every job held is handed back: %+v", c)
		require.EqualValues(t, len(jobs), c.Waiting+c.Completed)
		require.EqualValues(t, 40, c.Completed, "nothing after the held job ran")
		for _, j := range jobs[40:] {
			got, err := q.Job(ctx, j.ID)
			require.NoError(t, err)
			require.Equal(t, StateWaiting, got.State, j.ID)
			require.Equal(t, 0, got.AttemptsMade, "a job handed back spends no attempt")
			require.Equal(t, 0, got.Stalls, "nor counts a stall")
		}
		for _, j := range jobs[:40] {
			require.Equal(t, 1, rec.count(j.ID), "each job runs once")
		}
	})
}

// With Prefetch off a worker holds no more jobs than it runs.
func TestPrefetchOff(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue("pfoff", nil)
		prefetchSetup(t, q, 40, 50)
		blocked, release := make(chan struct{}, 1), make(chan struct{})
		defer close(release)
		h.worker("pfoff", blockingRecorder(blocked, release), &WorkerConfig{Concurrency: 1, Prefetch: -1,
			LeaseDuration: 5 * time.Second, PollInterval: time.Second})
		<-blocked
		for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
			require.EqualValues(t, 1, activeCount(t, q), "no job claimed ahead")
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Jobs claimed ahead keep their leases through heartbeats while they wait
// for a slot far longer than a lease: recovery never re-queues them, and
// each runs exactly once with no stall counted.
func TestPrefetchedJobsKeepTheirLeases(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue("pflease", nil)
		jobs := prefetchSetup(t, q, 40, 60)
		blocked, release := make(chan struct{}, 1), make(chan struct{})
		rec := blockingRecorder(blocked, release)
		h.worker("pflease", rec, &WorkerConfig{Concurrency: 1, Prefetch: 20, LeaseDuration: MinLeaseDuration,
			PollInterval: time.Second})
		<-blocked
		waitFor(t, 5*time.Second, "jobs claimed ahead", func() bool { return activeCount(t, q) > 1 })
		// Hold the slot for three leases and two recovery passes.
		time.Sleep(3 * MinLeaseDuration)
		close(release)
		for _, j := range jobs {
			got := waitState(t, q, j.ID, StateCompleted, 10*time.Second)
			require.Equal(t, 0, got.Stalls, "job %s was recovered while it waited for a slot", j.ID)
			require.Equal(t, 1, rec.count(j.ID), "job %s ran %d times", j.ID, rec.count(j.ID))
		}
	})
}

// A job whose lease is lost while it waits for a slot (it was removed) is
// never started.
func TestPrefetchedJobRemovedIsNotStarted(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("pfrm", nil)
		jobs := prefetchSetup(t, q, 40, 60)
		blocked, release := make(chan struct{}, 1), make(chan struct{})
		rec := blockingRecorder(blocked, release)
		logs := &syncbuf.Buffer{}
		h.worker("pfrm", rec, &WorkerConfig{Concurrency: 1, Prefetch: 20, LeaseDuration: MinLeaseDuration,
			PollInterval: time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		<-blocked
		waitFor(t, 5*time.Second, "jobs claimed ahead", func() bool { return activeCount(t, q) > 1 })
		active, err := q.Jobs(ctx, StateActive, 0, 100)
		require.NoError(t, err)
		// A job after the held one: claimed ahead, not run (an earlier job may
		// still count active while its completion is on its way).
		later := map[string]bool{}
		for _, j := range jobs[41:] {
			later[j.ID] = true
		}
		var victim string
		for _, j := range active {
			if later[j.ID] {
				victim = j.ID
				break
			}
		}
		require.NotEmpty(t, victim, "a job claimed ahead is listed active")
		require.NoError(t, q.Remove(ctx, victim, &RemoveOptions{Force: true}))
		waitFor(t, 5*time.Second, "a heartbeat to find the lease gone", func() bool {
			return strings.Contains(logs.String(), "lease lost") && strings.Contains(logs.String(), "job="+victim)
		})
		close(release)
		for _, j := range jobs {
			if j.ID == victim {
				continue
			}
			waitState(t, q, j.ID, StateCompleted, 10*time.Second)
		}
		require.Equal(t, 0, rec.count(victim), "a removed job must not start")
	})
}

// A worker cut off from Redis loses the leases of the jobs it claimed ahead
// along with the running one's: it never starts them, even after the
// partition heals, and they complete once, elsewhere.
func TestPartitionDropsPrefetchedJobs(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		if h.addr() == "" {
			t.Skip("single-node proxy test")
		}
		p := newProxy(t, h.addr())
		q := h.queue("pfpart", nil)
		jobs := prefetchSetup(t, q, 40, 60)
		blocked := make(chan struct{}, 1)
		first := blockingRecorder(blocked, nil)
		cfg := WorkerConfig{Concurrency: 1, Prefetch: 20, LeaseDuration: time.Second, PollInterval: time.Second,
			Prefix: h.prefix, Logger: slog.New(slog.DiscardHandler)}
		w, err := NewWorker(p.client(h), "pfpart", first, &cfg)
		require.NoError(t, err)
		h.start(w)
		<-blocked
		waitFor(t, 5*time.Second, "jobs claimed ahead", func() bool { return activeCount(t, q) > 1 })
		for _, j := range jobs[:40] {
			waitState(t, q, j.ID, StateCompleted, 5*time.Second) // their completions have landed
		}
		p.cut()
		second := newRecorder(nil)
		h.worker("pfpart", second, &WorkerConfig{Concurrency: 4, LeaseDuration: time.Second, PollInterval: time.Second})
		for _, j := range jobs[40:] {
			waitState(t, q, j.ID, StateCompleted, 15*time.Second)
		}
		p.restore()
		for _, j := range jobs[41:] {
			require.Equal(t, 0, first.count(j.ID), "job %s, claimed ahead by the partitioned worker, started there", j.ID)
			require.Equal(t, 1, second.count(j.ID))
		}
		for _, j := range jobs[:40] {
			require.Equal(t, 1, first.count(j.ID))
			require.Equal(t, 0, second.count(j.ID))
		}
	})
}

// Pausing the queue stops the jobs claimed ahead too: the worker's next
// call finds the queue paused and hands back the jobs it has not started;
// they wait, unspent, until Resume, and then each runs once.
func TestPrefetchedJobsHandedBackOnPause(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("pfpause", nil)
		jobs := prefetchSetup(t, q, 40, 60)
		blocked, release := make(chan struct{}, 1), make(chan struct{})
		inner := blockingRecorder(blocked, release)
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			var p struct{ I int }
			if job.Name == "quick" && job.Decode(&p) == nil && p.I > 40 {
				time.Sleep(20 * time.Millisecond) // the jobs after the held one take a while
			}
			return inner.ProcessJob(ctx, job)
		})
		h.worker("pfpause", rec, &WorkerConfig{Concurrency: 1, Prefetch: 20, LeaseDuration: 5 * time.Second,
			PollInterval: time.Second})
		<-blocked
		waitFor(t, 5*time.Second, "jobs claimed ahead", func() bool { return activeCount(t, q) > 5 })
		require.NoError(t, q.Pause(ctx))
		close(release) // the held job completes; that call finds the queue paused
		waitFor(t, 5*time.Second, "the jobs claimed ahead handed back", func() bool { return activeCount(t, q) == 0 })
		ran, back := 0, 0
		for _, j := range jobs[41:] {
			got, err := q.Job(ctx, j.ID)
			require.NoError(t, err)
			switch rec.count(j.ID) {
			case 0:
				require.Equal(t, StateWaiting, got.State)
				require.Equal(t, 0, got.AttemptsMade, "a job handed back spends no attempt")
				back++
			default:
				require.Equal(t, StateCompleted, got.State)
				ran++
			}
		}
		t.Logf("%s: after the pause %d jobs claimed ahead still ran (started before the call returned), the rest waited", h.name, ran)
		require.LessOrEqual(t, ran, 3, "jobs claimed ahead kept running after the pause")
		require.GreaterOrEqual(t, back, 60-1-3)
		require.NoError(t, q.Resume(ctx))
		for _, j := range jobs {
			waitState(t, q, j.ID, StateCompleted, 10*time.Second)
			require.Equal(t, 1, rec.count(j.ID))
		}
	})
}

// At concurrency 1 under a backlog, claiming ahead turns one script call
// per job (each completion claims the slot's next job) into a fraction of
// one: the slot goes from job to job while acks and claims travel in
// batches. Every call to Redis is slowed by 2 ms, so that Redis, not the
// test process, is the slow side, as batching assumes.
func TestPrefetchBatchesAtConcurrencyOne(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		slow := cloneClient(t, h.client)
		var calls atomic.Int64
		slow.AddHook(cmdHook(func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
			calls.Add(1)
			time.Sleep(2 * time.Millisecond)
			return next(ctx, cmd)
		}))
		perJob := func(name string, prefetch int) float64 {
			q := h.queue(name, nil)
			const n = 300
			jobs := make([]NewJob, n)
			for i := range jobs {
				jobs[i] = NewJob{Name: "n"}
			}
			_, err := q.AddBulk(ctx, jobs)
			require.NoError(t, err)
			done := make(chan struct{}, n)
			w, err := NewWorker(slow, name, newRecorder(nil), &WorkerConfig{Prefix: h.prefix, Concurrency: 1,
				Prefetch: prefetch, LeaseDuration: 5 * time.Second, PollInterval: 5 * time.Second,
				Logger: slog.New(slog.DiscardHandler), OnCompleted: func(context.Context, *Job) { done <- struct{}{} }})
			require.NoError(t, err)
			before := calls.Load()
			h.start(w)
			for range n {
				<-done
			}
			c, err := q.Counts(ctx)
			require.NoError(t, err)
			require.EqualValues(t, n, c.Completed)
			return float64(calls.Load()-before) / n
		}
		off := perJob("pfc1off", -1)
		on := perJob("pfc1on", 0)
		t.Logf("%s: %.3f calls per job with Prefetch, %.3f without (concurrency 1)", h.name, on, off)
		require.Greater(t, off, 0.9, "without prefetch each completion is its own call")
		require.Less(t, on, 0.25, "with prefetch completions and claims are batched")
	})
}

// Outcome.Duration is the handler's run time: the write of the outcome,
// which the slot no longer waits for, is not in it. Completion writes are
// slowed by 300 ms here; the handler takes 20 ms.
func TestOutcomeDurationExcludesTheWrite(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		slow := cloneClient(t, h.client)
		slow.AddHook(cmdHook(func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
			if isScript(cmd, scripts.Complete) {
				time.Sleep(300 * time.Millisecond)
			}
			return next(ctx, cmd)
		}))
		q := h.queue("dur", nil)
		obs := &testObserver{}
		w, err := NewWorker(slow, "dur", HandlerFunc(func(context.Context, *Job) error {
			time.Sleep(20 * time.Millisecond)
			return nil
		}), &WorkerConfig{Prefix: h.prefix, Observer: obs, LeaseDuration: 5 * time.Second, PollInterval: time.Second,
			Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		h.start(w)
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		waitState(t, q, j.ID, StateCompleted, 5*time.Second)
		waitFor(t, 5*time.Second, "the outcome", func() bool {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			return len(obs.outcomes) == 1
		})
		obs.mu.Lock()
		defer obs.mu.Unlock()
		o := obs.outcomes[0]
		require.True(t, o.Recorded)
		require.GreaterOrEqual(t, o.Duration, 20*time.Millisecond)
		require.Less(t, o.Duration, 300*time.Millisecond, "the write's time is not the handler's")
	})
}
