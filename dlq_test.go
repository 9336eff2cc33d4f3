package hopper

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deadJobs dead-letters n jobs through a worker, returns their IDs oldest
// first, and stops the worker.
func deadJobs(t *testing.T, h *harness, q *Queue, n int) []string {
	t.Helper()
	ctx := context.Background()
	w := h.start(h.newWorker(q.Name(), HandlerFunc(func(ctx context.Context, job *Job) error {
		return Permanent(errors.New("nope " + job.ID))
	}), &WorkerConfig{Concurrency: 1, LeaseDuration: 2 * time.Second, PollInterval: time.Second}))
	var ids []string
	for i := range n {
		j, err := q.Add(ctx, "n", []byte(fmt.Sprint(i)), &JobOptions{ID: fmt.Sprintf("job-%02d", i)})
		require.NoError(t, err)
		waitState(t, q, j.ID, StateDead, 5*time.Second)
		ids = append(ids, j.ID)
		time.Sleep(2 * time.Millisecond) // distinct death timestamps for a stable newest-first order
	}
	require.NoError(t, w.Shutdown(ctx))
	return ids
}

func TestDLQ(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("dlq", nil)
		ids := deadJobs(t, h, q, 5)
		d := q.DeadLetters()

		n, err := d.Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 5, n)

		page, err := d.List(ctx, 0, 2)
		require.NoError(t, err)
		require.Len(t, page, 2)
		require.Equal(t, ids[4], page[0].ID, "newest first")
		require.Equal(t, ids[3], page[1].ID)
		require.Equal(t, "nope "+ids[4], page[0].LastError)
		require.Equal(t, "permanent failure: nope "+ids[4], page[0].DeadReason)
		page, err = d.List(ctx, 4, 0) // limit clamped up to 1
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, ids[0], page[0].ID)
		page, err = d.List(ctx, 0, 1<<30) // clamped to MaxPageSize
		require.NoError(t, err)
		require.Len(t, page, 5)

		got, err := d.Get(ctx, ids[1])
		require.NoError(t, err)
		require.Equal(t, StateDead, got.State)
		require.Equal(t, 1, got.AttemptsMade)

		require.NoError(t, d.Retry(ctx, ids[1]))
		got, err = q.Job(ctx, ids[1])
		require.NoError(t, err)
		require.Equal(t, StateWaiting, got.State)
		require.Equal(t, 0, got.AttemptsMade, "retry resets attempts")
		require.Empty(t, got.DeadReason)
		require.ErrorIs(t, d.Retry(ctx, ids[1]), ErrJobNotFound)
		_, err = d.Get(ctx, ids[1])
		require.ErrorIs(t, err, ErrJobNotFound)

		require.NoError(t, d.Delete(ctx, ids[2]))
		require.ErrorIs(t, d.Delete(ctx, ids[2]), ErrJobNotFound)
		require.ErrorIs(t, d.Delete(ctx, ids[1]), ErrJobNotFound, "only dead jobs")
		_, err = q.Job(ctx, ids[1])
		require.NoError(t, err, "a refused delete keeps the job")

		moved, err := d.RetryAll(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, moved)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Waiting: 4}, c)
	})
}

func TestDLQPurgeInBatches(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("purge", nil)
		// Put 1,200 jobs straight into the dead set through the scripts: more
		// than two purge batches.
		for i := 0; i < 1200; i += 100 {
			var jobs []NewJob
			for k := range 100 {
				jobs = append(jobs, NewJob{Name: "n", Options: &JobOptions{ID: fmt.Sprintf("j%d", i+k)}})
			}
			_, err := q.AddBulk(ctx, jobs)
			require.NoError(t, err)
			c, err := q.st.Fetch(ctx, 0, 100, 60000)
			require.NoError(t, err)
			for _, cl := range c.Jobs {
				s, err := q.st.Dead(ctx, 0, cl.ID, cl.Token, `{"error":"x"}`, 10000, 0, true)
				require.NoError(t, err)
				require.Equal(t, 1, s)
			}
		}
		n, err := q.DeadLetters().Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1200, n)
		purged, err := q.DeadLetters().Purge(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1200, purged)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{}, c)
		_, err = q.Job(ctx, "j5")
		require.ErrorIs(t, err, ErrJobNotFound)
	})
}
