package hopper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
	"github.com/stretchr/testify/require"
)

// complete claims and completes every waiting job at time nowMs, oldest
// first, returning their IDs.
func completeAll(t *testing.T, q *Queue, nowMs int64, keep Retention) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for {
		c, err := q.st.Fetch(ctx, nowMs, 1, 60000)
		require.NoError(t, err)
		if len(c.Jobs) == 0 {
			return ids
		}
		cl := c.Jobs[0]
		w := keep.wire()
		s, _, err := q.st.Complete(ctx, nowMs, []store.Ack{{ID: cl.ID, Token: cl.Token, KeepCount: w.Count, KeepAgeMs: w.Age}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{store.LeaseOK}, s)
		ids = append(ids, cl.ID)
		nowMs++
	}
}

func TestRetentionByCount(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("ret", nil)
		for i := range 5 {
			_, err := q.Add(ctx, "n", nil, &JobOptions{ID: fmt.Sprint("c", i)})
			require.NoError(t, err)
		}
		ids := completeAll(t, q, time.Now().UnixMilli(), Retention{Count: 2})
		require.Len(t, ids, 5)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, c.Completed)
		for _, id := range ids[:3] {
			_, err := q.Job(ctx, id)
			require.ErrorIs(t, err, ErrJobNotFound, "trimmed jobs lose all their data")
		}
		for _, id := range ids[3:] {
			j, err := q.Job(ctx, id)
			require.NoError(t, err)
			require.Equal(t, StateCompleted, j.State)
		}
	})
}

func TestRetentionByAge(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("age", nil)
		keep := Retention{Age: time.Minute}
		t0 := time.Now().UnixMilli()
		_, err := q.Add(ctx, "n", nil, &JobOptions{ID: "old"})
		require.NoError(t, err)
		completeAll(t, q, t0, keep)
		_, err = q.Add(ctx, "n", nil, &JobOptions{ID: "new"})
		require.NoError(t, err)
		completeAll(t, q, t0+59_000, keep)
		_, err = q.Job(ctx, "old")
		require.NoError(t, err, "59s old: kept")
		_, err = q.Add(ctx, "n", nil, &JobOptions{ID: "newer"})
		require.NoError(t, err)
		completeAll(t, q, t0+61_000, keep)
		_, err = q.Job(ctx, "old")
		require.ErrorIs(t, err, ErrJobNotFound, "61s old: trimmed")
		_, err = q.Job(ctx, "new")
		require.NoError(t, err)
	})
}

func TestRetentionRemoveAtOnceThroughWorker(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("rm1", &QueueConfig{KeepCompleted: &Retention{}})
		done := make(chan string, 2)
		h.worker("rm1", newRecorder(nil), &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second,
			OnCompleted: func(ctx context.Context, job *Job) { done <- job.ID }})
		a, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		b, err := q.Add(ctx, "n", nil, &JobOptions{KeepCompleted: &Retention{Count: 10}})
		require.NoError(t, err)
		<-done
		<-done
		_, err = q.Job(ctx, a.ID)
		require.ErrorIs(t, err, ErrJobNotFound, "queue default: remove at once")
		j, err := q.Job(ctx, b.ID)
		require.NoError(t, err, "job option overrides the queue default")
		require.Equal(t, StateCompleted, j.State)
	})
}

func TestRetentionDeadCount(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("rdead", &QueueConfig{KeepDead: &Retention{Count: 3}})
		deadJobs(t, h, q, 5)
		n, err := q.DeadLetters().Len(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		_, err = q.Job(ctx, "job-00")
		require.ErrorIs(t, err, ErrJobNotFound)
		_, err = q.Job(ctx, "job-04")
		require.NoError(t, err)
	})
}

// A batch of acknowledgements trims as much as it adds, so the completed set
// never outgrows its bound however large the batches.
func TestRetentionHoldsUnderBatchedAcks(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("batchret", nil)
		var jobs []NewJob
		for range 300 {
			jobs = append(jobs, NewJob{Name: "n"})
		}
		_, err := q.AddBulk(ctx, jobs)
		require.NoError(t, err)
		c, err := q.st.Fetch(ctx, 0, 300, 60000)
		require.NoError(t, err)
		require.Len(t, c.Jobs, 300)
		acks := make([]store.Ack, len(c.Jobs))
		for i, cl := range c.Jobs {
			acks[i] = store.Ack{ID: cl.ID, Token: cl.Token, KeepCount: 10}
		}
		st, _, err := q.st.Complete(ctx, 0, acks, 0, 0)
		require.NoError(t, err)
		for _, s := range st {
			require.Equal(t, store.LeaseOK, s)
		}
		n, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 10, n.Completed)
		left, err := q.st.Client().HLen(ctx, q.st.Keys().Key(keys.Jobs)).Result()
		require.NoError(t, err)
		require.EqualValues(t, 10, left, "trimmed jobs' data is gone too")
	})
}
