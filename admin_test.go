package hopper

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJobsByState(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("list", nil)
		for i := range 5 {
			_, err := q.Add(ctx, "n", nil, &JobOptions{ID: fmt.Sprint("w", i)})
			require.NoError(t, err)
		}
		_, err := q.Add(ctx, "n", nil, &JobOptions{ID: "p1", Priority: 1})
		require.NoError(t, err)
		for i := range 3 {
			_, err := q.Add(ctx, "n", nil, &JobOptions{ID: fmt.Sprint("d", i), Delay: time.Duration(3-i) * time.Hour})
			require.NoError(t, err)
		}
		ids := func(jobs []*Job) []string {
			var out []string
			for _, j := range jobs {
				out = append(out, j.ID)
			}
			return out
		}
		page, err := q.Jobs(ctx, StateWaiting, 0, 2)
		require.NoError(t, err)
		require.Equal(t, []string{"w4", "w3"}, ids(page), "newest first")
		page, err = q.Jobs(ctx, StateWaiting, 4, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"w0", "p1"}, ids(page), "then prioritized jobs")
		page, err = q.Jobs(ctx, StateWaiting, 6, 10)
		require.NoError(t, err)
		require.Empty(t, page)
		page, err = q.Jobs(ctx, StateDelayed, 0, 0) // clamped to 1
		require.NoError(t, err)
		require.Equal(t, []string{"d2"}, ids(page), "soonest due first")
		page, err = q.Jobs(ctx, StateDelayed, 0, 1<<20)
		require.NoError(t, err)
		require.Equal(t, []string{"d2", "d1", "d0"}, ids(page))
		_, err = q.Jobs(ctx, State("bogus"), 0, 10)
		require.ErrorIs(t, err, ErrInvalid)
		page, err = q.Jobs(ctx, StateCompleted, 0, 10)
		require.NoError(t, err)
		require.Empty(t, page)
	})
}

func TestListQueues(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		names, err := ListQueues(ctx, h.client, h.prefix)
		require.NoError(t, err)
		require.Empty(t, names)
		for _, name := range []string{"emails", "exports"} {
			_, err := h.queue(name, nil).Add(ctx, "n", nil, nil)
			require.NoError(t, err)
		}
		h.worker("reports", newRecorder(nil), nil)
		waitFor(t, 5*time.Second, "the worker registers its queue", func() bool {
			names, err = ListQueues(ctx, h.client, h.prefix)
			require.NoError(t, err)
			return len(names) == 3
		})
		sort.Strings(names)
		require.Equal(t, []string{"emails", "exports", "reports"}, names)
		_, err = ListQueues(ctx, h.client, "bad prefix")
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestCleanByAgeAndLimit(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("clean", nil)
		for i := range 5 {
			_, err := q.Add(ctx, "ok", nil, &JobOptions{ID: fmt.Sprint("c", i)})
			require.NoError(t, err)
		}
		_, err := q.Add(ctx, "bad", nil, &JobOptions{ID: "d0", Attempts: 1})
		require.NoError(t, err)
		_, err = q.Add(ctx, "ok", nil, &JobOptions{ID: "later", Delay: time.Hour})
		require.NoError(t, err)
		h.worker("clean", HandlerFunc(func(ctx context.Context, j *Job) error {
			if j.Name == "bad" {
				return Permanent(fmt.Errorf("no"))
			}
			return nil
		}), nil)
		for i := range 5 {
			waitState(t, q, fmt.Sprint("c", i), StateCompleted, 5*time.Second)
		}
		waitState(t, q, "d0", StateDead, 5*time.Second)

		// Every job finished within the last minute: nothing is an hour old.
		n, err := q.Clean(ctx, StateCompleted, time.Hour, 0)
		require.NoError(t, err)
		require.Zero(t, n)

		// Seen from two hours later, all are older than an hour; limit 2.
		at(q, time.Now().Add(2*time.Hour))
		n, err = q.Clean(ctx, StateCompleted, time.Hour, 2)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, c.Completed)
		n, err = q.Clean(ctx, StateCompleted, 0, 0)
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		for i := range 5 {
			_, err := q.Job(ctx, fmt.Sprint("c", i))
			require.ErrorIs(t, err, ErrJobNotFound, "job body deleted with its set entry")
		}
		n, err = q.Clean(ctx, StateDead, time.Hour, 10)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		c, err = q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Delayed: 1}, c, "the delayed job is untouched")

		_, err = q.Clean(ctx, StateWaiting, 0, 0)
		require.ErrorIs(t, err, ErrInvalid)
		_, err = q.Clean(ctx, StateDead, -time.Second, 0)
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestCleanInBatches(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("cleanbatch", nil)
		const n = adminBatch*2 + 7
		specs := make([]NewJob, n)
		for i := range specs {
			specs[i] = NewJob{Name: "x", Options: &JobOptions{Attempts: 1}}
		}
		_, err := q.AddBulk(ctx, specs)
		require.NoError(t, err)
		w := h.worker("cleanbatch", HandlerFunc(func(context.Context, *Job) error { return Permanent(fmt.Errorf("no")) }),
			&WorkerConfig{Concurrency: 50, LeaseDuration: 5 * time.Second, PollInterval: time.Second})
		waitFor(t, 20*time.Second, "every job dead", func() bool {
			c, err := q.Counts(ctx)
			require.NoError(t, err)
			return c.Dead == n
		})
		require.NoError(t, w.Shutdown(ctx)) // its maintenance would add to the command count
		before := h.cmds.Load()
		got, err := q.Clean(ctx, StateDead, 0, 0)
		require.NoError(t, err)
		require.EqualValues(t, n, got)
		require.LessOrEqual(t, h.cmds.Load()-before, int64(3+2), "three script calls, at most a few extra commands")
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Zero(t, c.Dead)
	})
}

func TestDrain(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("drain", nil)
		for i := range adminBatch + 3 {
			_, err := q.Add(ctx, "w", nil, &JobOptions{ID: fmt.Sprint("w", i)})
			require.NoError(t, err)
		}
		_, err := q.Add(ctx, "p", nil, &JobOptions{ID: "p", Priority: 3})
		require.NoError(t, err)
		_, err = q.Add(ctx, "d", nil, &JobOptions{ID: "d", Delay: time.Hour})
		require.NoError(t, err)

		n, err := q.Drain(ctx, false)
		require.NoError(t, err)
		require.EqualValues(t, adminBatch+4, n)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Delayed: 1}, c)
		_, err = q.Job(ctx, "w0")
		require.ErrorIs(t, err, ErrJobNotFound)
		_, err = q.Job(ctx, "p")
		require.ErrorIs(t, err, ErrJobNotFound)

		n, err = q.Drain(ctx, true)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		c, err = q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{}, c)
		// The IDs are free again.
		j, err := q.Add(ctx, "w", nil, &JobOptions{ID: "w0"})
		require.NoError(t, err)
		require.False(t, j.Duplicate)
	})
}

func TestRetryAndRetryAll(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("retryall", nil)
		h.worker("retryall", HandlerFunc(func(ctx context.Context, j *Job) error {
			if j.Name == "dead" {
				return Permanent(fmt.Errorf("no"))
			}
			if j.Name == "fail" && j.AttemptsMade == 0 {
				return fmt.Errorf("first attempt fails")
			}
			return nil
		}), nil)
		for i := range 3 {
			_, err := q.Add(ctx, "fail", nil, &JobOptions{ID: fmt.Sprint("f", i), Attempts: 5, Backoff: Fixed(time.Hour)})
			require.NoError(t, err)
			_, err = q.Add(ctx, "dead", nil, &JobOptions{ID: fmt.Sprint("d", i)})
			require.NoError(t, err)
		}
		for i := range 3 {
			waitState(t, q, fmt.Sprint("f", i), StateFailed, 5*time.Second)
			waitState(t, q, fmt.Sprint("d", i), StateDead, 5*time.Second)
		}

		// One failed job skips its hour of backoff and keeps its attempt count.
		require.NoError(t, q.Retry(ctx, "f0"))
		j := waitState(t, q, "f0", StateCompleted, 5*time.Second)
		require.Equal(t, 2, j.AttemptsMade)
		n, err := q.RetryAll(ctx, StateFailed)
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		waitState(t, q, "f1", StateCompleted, 5*time.Second)
		waitState(t, q, "f2", StateCompleted, 5*time.Second)

		// A dead job through Queue.Retry starts afresh (and dies again here).
		require.NoError(t, q.Retry(ctx, "d0"))
		waitFor(t, 5*time.Second, "d0 ran again", func() bool {
			j, err := q.Job(ctx, "d0")
			require.NoError(t, err)
			return j.State == StateDead && j.AttemptsMade == 1 && !j.FinishedAt.IsZero()
		})
		evs, err := q.ReadEvents(ctx, "", 1000)
		require.NoError(t, err)
		retried := map[string]int{}
		for _, ev := range evs {
			if ev.Type == EventRetrying {
				retried[ev.JobID]++
			}
		}
		require.Equal(t, map[string]int{"f0": 1, "f1": 1, "f2": 1, "d0": 1}, retried)

		n, err = q.RetryAll(ctx, StateDead)
		require.NoError(t, err)
		require.EqualValues(t, 3, n)

		err = q.Retry(ctx, "f0")
		require.ErrorIs(t, err, ErrJobNotFound, "a completed job is neither failed nor dead")
		_, err = q.RetryAll(ctx, StateWaiting)
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestObliterate(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("oblit", nil)
		other := h.queue("keep", nil)
		_, err := other.Add(ctx, "x", nil, &JobOptions{ID: "stays"})
		require.NoError(t, err)
		for i := range 20 {
			_, err := q.Add(ctx, "x", []byte("p"), &JobOptions{ID: fmt.Sprint("j", i), Delay: time.Duration(i%2) * time.Hour})
			require.NoError(t, err)
		}
		_, err = q.UpsertSchedule(ctx, "nightly", "0 3 * * *", "x", nil, nil)
		require.NoError(t, err)
		// One job active: claimed with a long lease.
		r, err := q.st.Fetch(ctx, 0, 1, 60000)
		require.NoError(t, err)
		require.Len(t, r.Jobs, 1)

		err = q.Obliterate(ctx, nil)
		require.ErrorIs(t, err, ErrJobActive)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 20, c.Waiting+c.Delayed+c.Active, "refused: nothing deleted")

		require.NoError(t, q.Obliterate(ctx, &ObliterateOptions{Force: true}))
		c, err = q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{}, c)
		for _, k := range q.st.Keys().All() {
			n, err := h.client.Exists(ctx, k).Result()
			require.NoError(t, err)
			require.Zero(t, n, "key %s is gone", k)
		}
		names, err := ListQueues(ctx, h.client, h.prefix)
		require.NoError(t, err)
		require.Equal(t, []string{"keep"}, names)
		j, err := other.Job(ctx, "stays")
		require.NoError(t, err)
		require.Equal(t, StateWaiting, j.State, "other queues are untouched")

		// The queue can be used again.
		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "j0"})
		require.NoError(t, err)
		names, err = ListQueues(ctx, h.client, h.prefix)
		require.NoError(t, err)
		require.Len(t, names, 2)
	})
}

func TestPromoteAll(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("promoteall", nil)
		for i := range adminBatch + 5 {
			_, err := q.Add(ctx, "x", nil, &JobOptions{ID: fmt.Sprint("d", i), Delay: time.Duration(i+1) * time.Minute})
			require.NoError(t, err)
		}
		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "ready"})
		require.NoError(t, err)
		n, err := q.PromoteAll(ctx)
		require.NoError(t, err)
		require.EqualValues(t, adminBatch+5, n)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Waiting: adminBatch + 6}, c)
		// FIFO after the job that was already waiting, soonest due first.
		r, err := q.st.Fetch(ctx, 0, 3, 60000)
		require.NoError(t, err)
		require.Equal(t, "ready", r.Jobs[0].ID)
		require.Equal(t, "d0", r.Jobs[1].ID)
		require.Equal(t, "d1", r.Jobs[2].ID)
		evs, err := q.JobEvents(ctx, "d3")
		require.NoError(t, err)
		require.Equal(t, EventWaiting, evs[len(evs)-1].Type)
		n, err = q.PromoteAll(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
