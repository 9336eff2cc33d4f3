package hopper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAddAndGet(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("email", nil)
		j, err := q.Add(ctx, "verify", []byte(`{"to":"a@b.c"}`), &JobOptions{Attempts: 3, Timeout: 10 * time.Second})
		require.NoError(t, err)
		require.NotEmpty(t, j.ID)
		require.Equal(t, StateWaiting, j.State)
		require.False(t, j.Duplicate)

		got, err := q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, "verify", got.Name)
		require.Equal(t, "email", got.Queue)
		require.Equal(t, `{"to":"a@b.c"}`, string(got.Payload))
		require.Equal(t, StateWaiting, got.State)
		require.Equal(t, 3, got.MaxAttempts)
		require.Equal(t, 10*time.Second, got.Timeout)
		require.Equal(t, 0, got.AttemptsMade)
		require.WithinDuration(t, time.Now(), got.CreatedAt, 5*time.Second)

		_, err = q.Job(ctx, "missing-id")
		require.ErrorIs(t, err, ErrJobNotFound)

		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Waiting: 1}, c)
	})
}

func TestAddJSON(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue("q", nil)
		j, err := q.AddJSON(context.Background(), "n", map[string]int{"a": 1}, nil)
		require.NoError(t, err)
		var v map[string]int
		require.NoError(t, j.Decode(&v))
		require.Equal(t, 1, v["a"])
		_, err = q.AddJSON(context.Background(), "n", func() {}, nil)
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestAddIdempotentUnderConcurrency(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("idem", nil)
		const n = 20
		var wg sync.WaitGroup
		results := make([]*Job, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = q.Add(ctx, "verify", []byte(fmt.Sprint(i)), &JobOptions{ID: "verify-42"})
			}()
		}
		wg.Wait()
		added := 0
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, "verify-42", results[i].ID)
			if !results[i].Duplicate {
				added++
			}
		}
		require.Equal(t, 1, added, "exactly one Add may create the job")
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, c.Waiting)
		// Duplicates describe the existing job, payload included.
		first, err := q.Job(ctx, "verify-42")
		require.NoError(t, err)
		for i := range n {
			require.Equal(t, first.Payload, results[i].Payload)
		}
	})
}

func TestAddBulk(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("bulk", nil)
		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "exists"})
		require.NoError(t, err)
		jobs, err := q.AddBulk(ctx, []NewJob{
			{Name: "a", Payload: []byte("1")},
			{Name: "b", Payload: []byte("2"), Options: &JobOptions{ID: "dup"}},
			{Name: "c", Payload: []byte("3"), Options: &JobOptions{ID: "dup"}},
			{Name: "d", Options: &JobOptions{ID: "exists"}},
			{Name: "e", Options: &JobOptions{Delay: time.Hour}},
		})
		require.NoError(t, err)
		require.Len(t, jobs, 5)
		require.False(t, jobs[0].Duplicate)
		require.False(t, jobs[1].Duplicate)
		require.True(t, jobs[2].Duplicate, "repeats an ID earlier in the batch")
		require.Equal(t, "b", jobs[2].Name, "a duplicate describes the first job")
		require.True(t, jobs[3].Duplicate)
		require.Equal(t, "x", jobs[3].Name)
		require.Equal(t, StateDelayed, jobs[4].State)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Waiting: 3, Delayed: 1}, c)
	})
}

func TestAddBulkAllOrNothing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("bulk", &QueueConfig{MaxPayloadBytes: 10})
		before := h.cmds.Load()
		for _, bad := range []NewJob{
			{Name: "", Payload: nil},
			{Name: "ok", Payload: make([]byte, 11)},
			{Name: "ok", Options: &JobOptions{Attempts: -1}},
			{Name: "ok", Options: &JobOptions{ID: "bad id"}},
		} {
			_, err := q.AddBulk(ctx, []NewJob{{Name: "good"}, {Name: "good2"}, bad})
			require.Error(t, err)
			require.Contains(t, err.Error(), "job 2")
		}
		require.Equal(t, before, h.cmds.Load(), "a bad batch sends nothing to Redis")
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{}, c)
		_, err = q.AddBulk(ctx, make([]NewJob, MaxBulk+1))
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		for _, name := range []string{"", "a:b", "{x}", "a b", "a\nb", "a\x00b", "é", string(make([]byte, 101))} {
			_, err := NewQueue(h.client, name, nil)
			require.ErrorIs(t, err, ErrInvalid, "queue name %q", name)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "queue name", ve.Field)
			require.Contains(t, err.Error(), "hopper: ")
		}
		_, err := NewQueue(nil, "q", nil)
		require.ErrorIs(t, err, ErrInvalid)
		for _, cfg := range []QueueConfig{
			{Prefix: "a{b"}, {MaxPayloadBytes: -1}, {DefaultAttempts: MaxAttempts + 1},
			{DefaultTimeout: -time.Second}, {KeepCompleted: &Retention{Count: -1}},
			{KeepDead: &Retention{Age: -time.Hour}}, {DefaultBackoff: Exponential(time.Second).WithFactor(0.5)},
		} {
			_, err := NewQueue(h.client, "q", &cfg)
			require.ErrorIs(t, err, ErrInvalid, "%+v", cfg)
		}

		q := h.queue("q", &QueueConfig{MaxPayloadBytes: 100})
		before := h.cmds.Load()
		cases := []struct {
			name    string
			payload []byte
			opts    *JobOptions
			field   string
		}{
			{"", nil, nil, "job name"},
			{"has space", nil, nil, "job name"},
			{"n", nil, &JobOptions{ID: "x{y}"}, "JobOptions.ID"},
			{"n", nil, &JobOptions{ID: "line\nbreak"}, "JobOptions.ID"},
			{"n", nil, &JobOptions{ID: string(make([]byte, 201))}, "JobOptions.ID"},
			{"n", nil, &JobOptions{Delay: -time.Second}, "JobOptions.Delay"},
			{"n", nil, &JobOptions{Delay: time.Second, RunAt: time.Now()}, "JobOptions.RunAt"},
			{"n", nil, &JobOptions{Attempts: -1}, "JobOptions.Attempts"},
			{"n", nil, &JobOptions{Attempts: MaxAttempts + 1}, "JobOptions.Attempts"},
			{"n", nil, &JobOptions{Timeout: -time.Second}, "JobOptions.Timeout"},
			{"n", nil, &JobOptions{Priority: -1}, "JobOptions.Priority"},
			{"n", nil, &JobOptions{Priority: MaxPriority + 1}, "JobOptions.Priority"},
			{"n", nil, &JobOptions{KeepCompleted: &Retention{Count: -2}}, "JobOptions.KeepCompleted.Count"},
			{"n", nil, &JobOptions{Backoff: Fixed(-time.Second)}, "JobOptions.Backoff delay"},
			{"n", nil, &JobOptions{Backoff: Exponential(time.Second).WithJitter(2)}, "JobOptions.Backoff jitter"},
			{"n", nil, &JobOptions{Backoff: Custom("")}, "JobOptions.Backoff"},
		}
		for _, c := range cases {
			_, err := q.Add(ctx, c.name, c.payload, c.opts)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "%+v", c)
			require.Equal(t, c.field, ve.Field)
		}
		_, err = q.Add(ctx, "n", make([]byte, 101), nil)
		require.ErrorIs(t, err, ErrPayloadTooLarge)
		require.Contains(t, err.Error(), "101 bytes")
		require.Equal(t, before, h.cmds.Load(), "bad input sends nothing to Redis")

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = q.Add(cctx, "n", nil, nil)
		require.ErrorIs(t, err, context.Canceled)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{}, c)
	})
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		if h.mr == nil {
			t.Skip("stopping the server is covered by the chaos suite on real Redis")
		}
		q := h.queue("q", nil)
		h.mr.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := q.Add(ctx, "n", nil, nil)
		require.Error(t, err)
		require.Contains(t, err.Error(), "hopper: add to queue q")
		require.Less(t, time.Since(start), 3*time.Second)
	})
}

func TestRemove(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("rm", nil)
		a, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		b, err := q.Add(ctx, "n", nil, &JobOptions{Priority: 3})
		require.NoError(t, err)
		d, err := q.Add(ctx, "n", nil, &JobOptions{Delay: time.Hour})
		require.NoError(t, err)
		for _, id := range []string{a.ID, b.ID, d.ID} {
			require.NoError(t, q.Remove(ctx, id, nil))
			_, err = q.Job(ctx, id)
			require.ErrorIs(t, err, ErrJobNotFound)
		}
		require.ErrorIs(t, q.Remove(ctx, a.ID, nil), ErrJobNotFound)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{}, c)
		// The ID is free again.
		again, err := q.Add(ctx, "n", nil, &JobOptions{ID: "reuse"})
		require.NoError(t, err)
		require.NoError(t, q.Remove(ctx, again.ID, nil))
		again, err = q.Add(ctx, "n", nil, &JobOptions{ID: "reuse"})
		require.NoError(t, err)
		require.False(t, again.Duplicate)
	})
}

func TestPromote(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("p", nil)
		j, err := q.Add(ctx, "n", nil, &JobOptions{Delay: time.Hour})
		require.NoError(t, err)
		require.NoError(t, q.Promote(ctx, j.ID))
		got, err := q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, StateWaiting, got.State)
		require.ErrorIs(t, q.Promote(ctx, j.ID), ErrJobNotFound)
	})
}

var _ = errors.Is
