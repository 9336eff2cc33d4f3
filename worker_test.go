package hopper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/scripts"
	"github.com/hopperq/hopper/internal/store"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestWorkerCompletes(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("w", nil)
		var completed atomic.Int32
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			require.Equal(t, 0, job.AttemptsMade)
			require.Equal(t, StateActive, job.State)
			require.NoError(t, job.UpdateProgress(ctx, 50))
			job.SetResult([]byte("done:" + string(job.Payload)))
			return nil
		})
		h.worker("w", rec, &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second,
			OnCompleted: func(ctx context.Context, job *Job) {
				require.Equal(t, StateCompleted, job.State)
				completed.Add(1)
			}})
		j, err := q.Add(ctx, "n", []byte("x"), nil)
		require.NoError(t, err)
		got := waitState(t, q, j.ID, StateCompleted, 5*time.Second)
		require.Equal(t, "done:x", string(got.Result))
		require.JSONEq(t, "50", string(got.Progress))
		require.Equal(t, 1, got.AttemptsMade)
		require.False(t, got.StartedAt.IsZero())
		require.False(t, got.FinishedAt.IsZero())
		waitFor(t, time.Second, "OnCompleted", func() bool { return completed.Load() == 1 })
		require.Equal(t, 1, rec.count(j.ID))
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Completed: 1}, c)
	})
}

// An idle worker blocks on the wake-up marker: a job added to an idle queue
// starts long before the poll interval would have found it.
func TestPickupIsPushed(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("push", nil)
		started := make(chan time.Time, 10)
		h.worker("push", HandlerFunc(func(ctx context.Context, job *Job) error {
			started <- time.Now()
			return nil
		}), &WorkerConfig{LeaseDuration: 5 * time.Second, PollInterval: 10 * time.Second})
		// Let the worker reach its idle blocking read: the first maintenance
		// pass and an empty fetch happen at start.
		waitFor(t, 5*time.Second, "worker idle", func() bool { return true })
		for i := 0; i < 3; i++ {
			time.Sleep(200 * time.Millisecond) // spacing between adds, not synchronisation
			added := time.Now()
			_, err := q.Add(ctx, "n", nil, nil)
			require.NoError(t, err)
			select {
			case s := <-started:
				require.Less(t, s.Sub(added), 2*time.Second, "pickup must not wait for the 10s poll")
			case <-time.After(5 * time.Second):
				t.Fatal("job not picked up")
			}
		}
	})
}

func TestRetryThenSucceed(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("r", nil)
		var failed atomic.Int32
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			if job.AttemptsMade == 0 {
				return errors.New("transient")
			}
			return nil
		})
		h.worker("r", rec, &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second,
			OnFailed: func(ctx context.Context, job *Job, err error) {
				require.Equal(t, StateFailed, job.State)
				failed.Add(1)
			}})
		j, err := q.Add(ctx, "n", nil, &JobOptions{Attempts: 3, Backoff: Fixed(300 * time.Millisecond)})
		require.NoError(t, err)
		f := waitState(t, q, j.ID, StateFailed, 5*time.Second)
		require.Equal(t, 1, f.AttemptsMade)
		require.Equal(t, "transient", f.LastError)
		require.False(t, f.DueAt.IsZero())
		got := waitState(t, q, j.ID, StateCompleted, 5*time.Second)
		require.Equal(t, 2, got.AttemptsMade)
		require.Equal(t, "transient", got.LastError, "the last error stays for reference")
		require.Equal(t, 2, rec.count(j.ID))
		require.EqualValues(t, 1, failed.Load())
	})
}

func TestExhaustedGoesToDLQ(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("x", nil)
		var dead atomic.Int32
		rec := newRecorder(func(ctx context.Context, job *Job) error { return fmt.Errorf("boom %d", job.AttemptsMade+1) })
		h.worker("x", rec, &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second,
			OnDead: func(ctx context.Context, job *Job, err error) { dead.Add(1) }})
		j, err := q.Add(ctx, "n", nil, &JobOptions{Attempts: 3, Backoff: Fixed(0)})
		require.NoError(t, err)
		got := waitState(t, q, j.ID, StateDead, 5*time.Second)
		require.Equal(t, 3, got.AttemptsMade)
		require.Equal(t, "boom 3", got.LastError)
		require.Equal(t, "attempts exhausted: 3 of 3 failed", got.DeadReason)
		require.Equal(t, 3, rec.count(j.ID))
		waitFor(t, time.Second, "OnDead", func() bool { return dead.Load() == 1 })
		n, err := q.DeadLetters().Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})
}

func TestPermanentAndRetryAfter(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("pr", nil)
		var snoozes atomic.Int32
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			switch job.Name {
			case "perm":
				return Permanent(errors.New("bad input"))
			case "snooze":
				if snoozes.Add(1) <= 2 {
					return RetryAfter(100*time.Millisecond, errors.New("429"))
				}
			}
			return nil
		})
		h.worker("pr", rec, nil)
		p, err := q.Add(ctx, "perm", nil, &JobOptions{Attempts: 5})
		require.NoError(t, err)
		s, err := q.Add(ctx, "snooze", nil, &JobOptions{Attempts: 1})
		require.NoError(t, err)
		got := waitState(t, q, p.ID, StateDead, 5*time.Second)
		require.Equal(t, 1, got.AttemptsMade)
		require.Equal(t, "permanent failure: bad input", got.DeadReason)
		require.Equal(t, 1, rec.count(p.ID))
		// Attempts: 1, yet it ran three times: snoozes spend no attempt.
		got = waitState(t, q, s.ID, StateCompleted, 5*time.Second)
		require.Equal(t, 3, rec.count(s.ID))
		require.Equal(t, 1, got.AttemptsMade)
	})
}

func TestPanicRetriesThenDLQ(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("panic", nil)
		rec := newRecorder(func(ctx context.Context, job *Job) error { panic("kaboom") })
		h.worker("panic", rec, nil)
		j, err := q.Add(ctx, "n", nil, &JobOptions{Attempts: 2, Backoff: Fixed(10 * time.Millisecond)})
		require.NoError(t, err)
		got := waitState(t, q, j.ID, StateDead, 5*time.Second)
		require.Equal(t, 2, rec.count(j.ID))
		require.Equal(t, "hopper: handler panicked: kaboom", got.LastError)
		require.Contains(t, got.Stack, "worker_test.go", "the stack trace names the panicking code")
		require.Contains(t, got.DeadReason, "attempts exhausted")
	})
}

func TestTimeoutCancelsAndRefusesLateAck(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("to", nil)
		release := make(chan struct{})
		cause := make(chan error, 1)
		returned := make(chan struct{})
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			if job.AttemptsMade > 0 {
				return nil
			}
			<-ctx.Done()
			cause <- context.Cause(ctx)
			<-release // ignore the timeout for a while, then claim success
			defer close(returned)
			return nil
		})
		h.worker("to", rec, nil)
		j, err := q.Add(ctx, "n", nil, &JobOptions{Timeout: 200 * time.Millisecond, Attempts: 2, Backoff: Fixed(time.Hour)})
		require.NoError(t, err)
		select {
		case c := <-cause:
			require.ErrorIs(t, c, ErrJobTimeout)
		case <-time.After(5 * time.Second):
			t.Fatal("handler ctx not cancelled at the timeout")
		}
		got := waitState(t, q, j.ID, StateFailed, 5*time.Second)
		require.Contains(t, got.LastError, "hopper: job timed out after 200ms")
		close(release)
		<-returned
		// The late "success" must not complete the job.
		got, err = q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, StateFailed, got.State)
		require.Equal(t, 1, got.AttemptsMade)
	})
}

// A job that runs longer than its lease keeps the lease through heartbeats
// and is not recovered.
func TestHeartbeatKeepsLongJob(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("hb", nil)
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			select {
			case <-time.After(2500 * time.Millisecond): // the work: 2.5 leases long
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
		h.worker("hb", rec, &WorkerConfig{Concurrency: 2, LeaseDuration: time.Second, PollInterval: time.Second})
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		got := waitState(t, q, j.ID, StateCompleted, 10*time.Second)
		require.Equal(t, 0, got.Stalls)
		require.Equal(t, 1, rec.count(j.ID))
	})
}

// A worker that crashed (here: a claim nobody runs) loses the job only until
// its lease expires; then another worker recovers and runs it.
func TestRecoverExpiredLease(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("rec", nil)
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		claimed, err := q.st.Fetch(ctx, 0, 1, 500) // the "crashed" worker's claim: 500ms lease
		require.NoError(t, err)
		require.Len(t, claimed.Jobs, 1)
		rec := newRecorder(nil)
		start := time.Now()
		h.worker("rec", rec, nil)
		got := waitState(t, q, j.ID, StateCompleted, 5*time.Second)
		require.Equal(t, 1, got.Stalls)
		require.Equal(t, 1, got.AttemptsMade, "a stall spends no attempt")
		require.Less(t, time.Since(start), 4*time.Second, "recovered within lease + poll interval")
		// The crashed worker's late ack is refused.
		st, _, err := q.st.Complete(ctx, 0, []store.Ack{{ID: j.ID, Token: claimed.Jobs[0].Token}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{0}, st)
	})
}

func TestGracefulShutdownReleasesWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("sd", nil)
		started := make(chan string, 4)
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			started <- job.Name
			if job.Name == "quick" {
				time.Sleep(100 * time.Millisecond) // the work
				return nil
			}
			<-ctx.Done()
			return context.Cause(ctx)
		})
		w := h.newWorker("sd", rec, nil)
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		slow, err := q.Add(ctx, "slow", nil, nil)
		require.NoError(t, err)
		quick, err := q.Add(ctx, "quick", nil, nil)
		require.NoError(t, err)
		<-started
		<-started
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		err = w.Shutdown(sctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(t0), 2*time.Second)
		require.NoError(t, <-done)

		got, err := q.Job(ctx, slow.ID)
		require.NoError(t, err)
		require.Equal(t, StateWaiting, got.State)
		require.Equal(t, 0, got.AttemptsMade, "a released job spends no attempt")
		got, err = q.Job(ctx, quick.ID)
		require.NoError(t, err)
		require.Equal(t, StateCompleted, got.State, "a job finishing within the budget completes")

		require.ErrorIs(t, w.Run(ctx), ErrWorkerClosed)
		require.NoError(t, w.Close())
		// Nothing was fetched after Shutdown: the released job is still waiting.
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, c.Waiting)
	})
}

func TestRunCtxCancelStopsGracefully(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue("ctx", nil)
		w := h.newWorker("ctx", newRecorder(nil), nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		j, err := q.Add(context.Background(), "n", nil, nil)
		require.NoError(t, err)
		waitState(t, q, j.ID, StateCompleted, 5*time.Second)
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after ctx ended")
		}
	})
}

func TestShutdownBeforeRun(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		w := h.newWorker("q", newRecorder(nil), nil)
		require.NoError(t, w.Shutdown(context.Background()))
		require.ErrorIs(t, w.Run(context.Background()), ErrWorkerClosed)
	})
}

func TestForceRemoveCancelsHandler(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("frm", nil)
		running := make(chan string, 1)
		cause := make(chan error, 1)
		h.worker("frm", HandlerFunc(func(ctx context.Context, job *Job) error {
			running <- job.ID
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil
		}), &WorkerConfig{LeaseDuration: time.Second, PollInterval: time.Second})
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		<-running
		require.ErrorIs(t, q.Remove(ctx, j.ID, nil), ErrJobActive)
		require.NoError(t, q.Remove(ctx, j.ID, &RemoveOptions{Force: true}))
		select {
		case c := <-cause:
			require.ErrorIs(t, c, ErrLeaseLost)
		case <-time.After(5 * time.Second):
			t.Fatal("handler not cancelled after its job was removed")
		}
		_, err = q.Job(ctx, j.ID)
		require.ErrorIs(t, err, ErrJobNotFound, "the handler's late success must not recreate the job")
	})
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("pause", nil)
		require.NoError(t, q.Pause(ctx))
		rec := newRecorder(nil)
		h.worker("pause", rec, nil)
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.True(t, c.Paused)
		// Two maintenance passes (PollInterval 1s) and the add's wake-up have
		// had their chance to fetch it.
		time.Sleep(2500 * time.Millisecond) // observation window for "nothing happens"
		require.Equal(t, 0, rec.total())
		require.NoError(t, q.Resume(ctx))
		waitState(t, q, j.ID, StateCompleted, 5*time.Second)
	})
}

func TestDelayedJobRunsOnceAfterDue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("delay", nil)
		var mu sync.Mutex
		var startedAt []time.Time
		rec := newRecorder(func(ctx context.Context, job *Job) error {
			mu.Lock()
			startedAt = append(startedAt, time.Now())
			mu.Unlock()
			return nil
		})
		// Three workers race to promote the same due jobs.
		for range 3 {
			h.worker("delay", rec, &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: 5 * time.Second})
		}
		added := time.Now()
		var ids []string
		for i := range 20 {
			j, err := q.Add(ctx, "n", nil, &JobOptions{Delay: 400*time.Millisecond + time.Duration(i)*time.Millisecond})
			require.NoError(t, err)
			require.Equal(t, StateDelayed, j.State)
			ids = append(ids, j.ID)
		}
		for _, id := range ids {
			waitState(t, q, id, StateCompleted, 5*time.Second)
			require.Equal(t, 1, rec.count(id), "promoted and run exactly once")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range startedAt {
			require.GreaterOrEqual(t, s.Sub(added), 390*time.Millisecond, "not before due")
			require.Less(t, s.Sub(added), 3*time.Second, "promoted by the due timer, not the 5s poll")
		}
	})
}

func TestMaxStallsDeadLetters(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("stall", nil)
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		now := time.Now().UnixMilli()
		for i := 1; i <= 3; i++ {
			c, err := q.st.Fetch(ctx, now, 1, 1000)
			require.NoError(t, err)
			require.Len(t, c.Jobs, 1, "round %d", i)
			require.Equal(t, i-1, c.Jobs[0].Stalls)
			now += 1001 // the lease expires unextended
			requeued, dead, err := q.st.Recover(ctx, now, 2, 100, 10, 0)
			require.NoError(t, err)
			if i <= 2 {
				require.Equal(t, []string{j.ID}, requeued)
				require.Empty(t, dead)
			} else {
				require.Empty(t, requeued)
				require.Equal(t, []string{j.ID}, dead)
			}
		}
		got, err := q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, StateDead, got.State)
		require.Equal(t, 3, got.Stalls)
		require.Equal(t, 0, got.AttemptsMade)
		require.Contains(t, got.DeadReason, "stalled 3 times (max 2)")
	})
}

func TestFailAfterSpendsAttemptsWithItsDelay(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("failafter", nil)
		var mu sync.Mutex
		var runs []time.Time
		h.worker("failafter", HandlerFunc(func(ctx context.Context, job *Job) error {
			mu.Lock()
			runs = append(runs, time.Now())
			mu.Unlock()
			return FailAfter(300*time.Millisecond, errors.New("503"))
		}), nil)
		// The job's own backoff (an hour) is overridden by FailAfter's delay.
		j, err := q.Add(ctx, "n", nil, &JobOptions{Attempts: 2, Backoff: Fixed(time.Hour)})
		require.NoError(t, err)
		got := waitState(t, q, j.ID, StateDead, 5*time.Second)
		require.Equal(t, 2, got.AttemptsMade)
		require.Contains(t, got.DeadReason, "attempts exhausted: 2 of 2")
		require.Contains(t, got.LastError, "503")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, runs, 2)
		require.GreaterOrEqual(t, runs[1].Sub(runs[0]), 290*time.Millisecond)
	})
}

func TestOnDeadForJobsRecoveryDeadLetters(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("stalldead", nil)
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		// Two crashed deliveries: claimed with a 1 ms lease, then recovered.
		for range 2 {
			c, err := q.st.Fetch(ctx, 0, 1, 1)
			require.NoError(t, err)
			require.Len(t, c.Jobs, 1)
			waitFor(t, 5*time.Second, "the lease expires", func() bool {
				requeued, _, err := q.st.Recover(ctx, 0, 2, 100, 10, 0)
				require.NoError(t, err)
				return len(requeued) == 1
			})
		}
		// A third crashed delivery; a live worker's recovery pass kills it.
		c, err := q.st.Fetch(ctx, 0, 1, 1)
		require.NoError(t, err)
		require.Len(t, c.Jobs, 1)
		type dead struct {
			job *Job
			err error
		}
		got := make(chan dead, 1)
		cfg := fastWorkerConfig()
		cfg.MaxStalls = 2
		cfg.OnDead = func(ctx context.Context, job *Job, err error) { got <- dead{job, err} }
		h.worker("stalldead", newRecorder(nil), cfg)
		select {
		case d := <-got:
			require.Equal(t, j.ID, d.job.ID)
			require.Equal(t, StateDead, d.job.State)
			require.Equal(t, 3, d.job.Stalls)
			require.ErrorIs(t, d.err, ErrJobStalled)
			require.Contains(t, d.err.Error(), "stalled 3 times")
		case <-time.After(10 * time.Second):
			t.Fatal("OnDead was not called for the job recovery dead-lettered")
		}
	})
}

// gateHook holds the reply of the worker's next fetch script call, once
// armed, until released: a fetch that claimed jobs in Redis and whose reply
// is in flight when Shutdown starts.
type gateHook struct {
	sha     string
	armed   *atomic.Bool
	started chan struct{}
	proceed chan struct{}
}

func (gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if len(args) > 1 && cmd.Name() == "evalsha" && args[1] == g.sha && g.armed.CompareAndSwap(true, false) {
			err := next(ctx, cmd)
			close(g.started)
			<-g.proceed
			return err
		}
		return next(ctx, cmd)
	}
}
func (gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A fetch that is in flight when Shutdown starts may claim a job: the job is
// run and drained before Shutdown returns (found by the race detector: the
// handler WaitGroup was waited on while that fetch could still add to it,
// so a job could start after Shutdown returned).
func TestShutdownDuringFetchInFlight(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("fetchinflight", nil)
		g := gateHook{sha: scripts.Fetch.Script.Hash(), armed: new(atomic.Bool),
			started: make(chan struct{}), proceed: make(chan struct{})}
		h.client.AddHook(g)
		var ran, finished atomic.Int64
		w := h.newWorker("fetchinflight", HandlerFunc(func(ctx context.Context, j *Job) error {
			ran.Add(1)
			defer finished.Add(1)
			time.Sleep(300 * time.Millisecond) // a handler's work, still running if Shutdown returned early
			return nil
		}), &WorkerConfig{Concurrency: 2, LeaseDuration: 5 * time.Second, PollInterval: time.Second})
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		waitFor(t, 5*time.Second, "the worker is idle", func() bool { return w.idle.Load() })
		g.armed.Store(true)
		j, err := q.Add(ctx, "x", nil, nil)
		require.NoError(t, err)
		select {
		case <-g.started:
		case <-time.After(5 * time.Second):
			t.Fatal("the worker did not fetch")
		}
		shut := make(chan error, 1)
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			shut <- w.Shutdown(sctx)
		}()
		waitFor(t, 5*time.Second, "Shutdown has begun", w.intakeClosed)
		close(g.proceed)
		require.NoError(t, <-shut)
		require.Equal(t, ran.Load(), finished.Load(), "no handler runs after Shutdown returned")
		got, err := q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Contains(t, []State{StateCompleted, StateWaiting}, got.State, "drained or handed back, never left active")
		require.NoError(t, <-done)
	})
}
