package hopper

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/store"
	"github.com/stretchr/testify/require"
)

func TestStats(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("stats", nil)
		done := make(chan struct{}, 10)
		cfg := *fastWorkerConfig()
		cfg.Concurrency = 3
		cfg.OnCompleted = func(context.Context, *Job) { done <- struct{}{} }
		cfg.OnDead = func(context.Context, *Job, error) { done <- struct{}{} }
		w := h.worker("stats", HandlerFunc(func(ctx context.Context, job *Job) error {
			if job.Name == "bad" {
				return Permanent(errors.New("no"))
			}
			return nil
		}), &cfg)
		for _, name := range []string{"ok", "ok", "ok", "bad"} {
			_, err := q.Add(ctx, name, nil, nil)
			require.NoError(t, err)
		}
		for range 4 {
			<-done
		}
		var s *Stats
		waitFor(t, 5*time.Second, "worker registered", func() bool {
			var err error
			s, err = q.Stats(ctx)
			require.NoError(t, err)
			return len(s.Workers) == 1
		})
		require.Len(t, s.Minutes, 60)
		var completed, failed int64
		for _, m := range s.Minutes {
			completed += m.Completed
			failed += m.Failed
		}
		require.EqualValues(t, 3, completed)
		require.EqualValues(t, 1, failed)
		last := s.Minutes[59]
		require.EqualValues(t, 3, last.Completed, "counted in the current minute")
		require.WithinDuration(t, time.Now().Truncate(time.Minute), last.Start, time.Minute)
		wi := s.Workers[0]
		require.Equal(t, w.id, wi.ID)
		require.Equal(t, 3, wi.Concurrency)
		require.Equal(t, os.Getpid(), wi.PID)
		require.Equal(t, []string{"stats"}, wi.Queues)
		require.NotEmpty(t, wi.Host)
		require.WithinDuration(t, time.Now(), wi.LastSeen, 10*time.Second)
		require.Equal(t, Counts{Completed: 3, Dead: 1}, s.Counts)
		require.Zero(t, s.OldestWaiting)

		require.NoError(t, w.Shutdown(ctx))
		s, err := q.Stats(ctx)
		require.NoError(t, err)
		require.Empty(t, s.Workers, "a stopped worker unregisters")
	})
}

func TestStatsOldestWaitingAndRing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("ring", nil)
		t0 := time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)
		at(q, t0)
		_, err := q.Add(ctx, "first", nil, nil)
		require.NoError(t, err)
		at(q, t0.Add(time.Minute))
		_, err = q.Add(ctx, "second", nil, nil)
		require.NoError(t, err)
		at(q, t0.Add(90*time.Second))
		s, err := q.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, 90*time.Second, s.OldestWaiting)

		// Complete one job at t0+90s and one exactly an hour later: the ring
		// slot is reused and the old minute is gone.
		complete := func(at time.Time) {
			c, err := q.st.Fetch(ctx, at.UnixMilli(), 1, 60000)
			require.NoError(t, err)
			require.Len(t, c.Jobs, 1)
			_, _, err = q.st.Complete(ctx, at.UnixMilli(), []store.Ack{{ID: c.Jobs[0].ID, Token: c.Jobs[0].Token, KeepCount: 10}}, 0, 0)
			require.NoError(t, err)
		}
		complete(t0.Add(90 * time.Second))
		s, err = q.Stats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, s.Minutes[59].Completed)
		later := t0.Add(90*time.Second + time.Hour)
		complete(later)
		at(q, later)
		s, err = q.Stats(ctx)
		require.NoError(t, err)
		var total int64
		for _, m := range s.Minutes {
			total += m.Completed
		}
		require.EqualValues(t, 1, total, "the hour-old minute fell out of the ring")
		require.EqualValues(t, 1, s.Minutes[59].Completed)
	})
}

type testObserver struct {
	mu       sync.Mutex
	started  int
	outcomes []Outcome
}

func (o *testObserver) JobStarted(ctx context.Context, job *Job) {
	o.mu.Lock()
	o.started++
	o.mu.Unlock()
}

func (o *testObserver) JobFinished(ctx context.Context, job *Job, out Outcome) {
	o.mu.Lock()
	o.outcomes = append(o.outcomes, out)
	o.mu.Unlock()
}

func TestObserver(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("obs", nil)
		obs := &testObserver{}
		cfg := *fastWorkerConfig()
		cfg.Observer = obs
		h.worker("obs", HandlerFunc(func(ctx context.Context, job *Job) error {
			time.Sleep(20 * time.Millisecond) // the work, so Duration is measurable
			if job.Name == "fail" {
				return errors.New("x")
			}
			return nil
		}), &cfg)
		_, err := q.Add(ctx, "ok", nil, nil)
		require.NoError(t, err)
		f, err := q.Add(ctx, "fail", nil, &JobOptions{Attempts: 2, Backoff: Fixed(0)})
		require.NoError(t, err)
		waitState(t, q, f.ID, StateDead, 5*time.Second)
		waitFor(t, 5*time.Second, "three outcomes", func() bool {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			return len(obs.outcomes) == 3
		})
		obs.mu.Lock()
		defer obs.mu.Unlock()
		require.Equal(t, 3, obs.started)
		states := map[State]int{}
		for _, o := range obs.outcomes {
			states[o.State]++
			require.True(t, o.Recorded)
			require.GreaterOrEqual(t, o.Duration, 20*time.Millisecond)
		}
		require.Equal(t, map[State]int{StateCompleted: 1, StateFailed: 1, StateDead: 1}, states)
	})
}

// Found by the chaos suite (a frozen worker): when a job's lease is lost
// while its handler runs, the observer was told of the start but never of
// the end, so an "active jobs" gauge fed by it leaked. It now gets an
// unrecorded outcome.
func TestObserverSeesLostLeases(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("obslost", nil)
		obs := &testObserver{}
		cfg := *fastWorkerConfig()
		cfg.Observer = obs
		running := make(chan struct{}, 1)
		h.worker("obslost", HandlerFunc(func(ctx context.Context, job *Job) error {
			running <- struct{}{}
			<-ctx.Done() // cancelled when the job is removed under it
			return ctx.Err()
		}), &cfg)
		j, err := q.Add(ctx, "x", nil, nil)
		require.NoError(t, err)
		<-running
		require.NoError(t, q.Remove(ctx, j.ID, &RemoveOptions{Force: true}))
		waitFor(t, 10*time.Second, "the observer sees the attempt end", func() bool {
			obs.mu.Lock()
			defer obs.mu.Unlock()
			return len(obs.outcomes) == 1
		})
		obs.mu.Lock()
		defer obs.mu.Unlock()
		require.Equal(t, 1, obs.started)
		out := obs.outcomes[0]
		require.False(t, out.Recorded)
		require.Equal(t, StateActive, out.State)
		require.Error(t, out.Err)
	})
}
