package hopper

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A worker whose Redis goes away keeps retrying and resumes by itself.
func TestWorkerResumesAfterOutage(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		if h.addr() == "" {
			t.Skip("single-node proxy test")
		}
		ctx := context.Background()
		p := newProxy(t, h.addr())
		q := h.queue("out", nil)
		rec := newRecorder(nil)
		cfg := *fastWorkerConfig()
		cfg.Prefix, cfg.Logger = h.prefix, slog.New(slog.DiscardHandler)
		w, err := NewWorker(p.client(h), "out", rec, &cfg)
		require.NoError(t, err)
		h.start(w)
		a, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		waitState(t, q, a.ID, StateCompleted, 5*time.Second)

		p.cut()
		b, err := q.Add(ctx, "n", nil, nil) // through the direct client
		require.NoError(t, err)
		time.Sleep(1500 * time.Millisecond) // the outage: several failed fetch/poll rounds
		got, err := q.Job(ctx, b.ID)
		require.NoError(t, err)
		require.Equal(t, StateWaiting, got.State)
		p.restore()
		waitState(t, q, b.ID, StateCompleted, 10*time.Second)
	})
}

// A worker cut off from Redis cancels its handlers before their leases can
// expire (so recovery cannot hand the job to another worker while the first
// still runs it), and never acknowledges them; the job completes once,
// elsewhere.
func TestPartitionCancelsBeforeLeaseExpiry(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		if h.addr() == "" {
			t.Skip("single-node proxy test")
		}
		ctx := context.Background()
		p := newProxy(t, h.addr())
		q := h.queue("part", nil)
		type cancelled struct {
			cause error
			at    time.Time
		}
		cancels := make(chan cancelled, 1)
		started := make(chan struct{}, 1)
		first := newRecorder(func(ctx context.Context, job *Job) error {
			started <- struct{}{}
			<-ctx.Done()
			cancels <- cancelled{context.Cause(ctx), time.Now()}
			return nil // a late "success" that must not be recorded
		})
		cfg := WorkerConfig{Concurrency: 1, LeaseDuration: time.Second, PollInterval: time.Second,
			Prefix: h.prefix, Logger: slog.New(slog.DiscardHandler)}
		w, err := NewWorker(p.client(h), "part", first, &cfg)
		require.NoError(t, err)
		h.start(w)
		j, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		<-started
		cutAt := time.Now()
		p.cut()
		c := <-cancels
		require.ErrorIs(t, c.cause, ErrLeaseLost)
		require.Less(t, c.at.Sub(cutAt), time.Second, "cancelled before the lease (1s) could expire")

		second := newRecorder(nil)
		h.worker("part", second, &WorkerConfig{Concurrency: 1, LeaseDuration: time.Second, PollInterval: time.Second})
		got := waitState(t, q, j.ID, StateCompleted, 10*time.Second)
		require.Equal(t, 1, got.Stalls)
		require.Equal(t, 1, second.count(j.ID))
		p.restore()
		// Give the healed first worker time to (wrongly) write anything.
		time.Sleep(1500 * time.Millisecond) // observation window
		got, err = q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, 1, got.AttemptsMade, "exactly one completion")
		require.Equal(t, StateCompleted, got.State)
	})
}
