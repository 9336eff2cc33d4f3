package hopper

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/stretchr/testify/require"
)

var discard = slog.New(slog.DiscardHandler)

// at makes q's clock (and its scripts' clock) read t.
func at(q *Queue, t time.Time) { q.now = func() time.Time { return t } }

// schedPass runs one scheduler pass at t, as a worker would.
func schedPass(t *testing.T, q *Queue, now time.Time) int {
	t.Helper()
	n, _, err := runSchedules(context.Background(), q.st, now.UnixMilli(), now, discard)
	require.NoError(t, err)
	return n
}

// waitingIDs returns the IDs of the queue's waiting jobs, sorted.
func waitingIDs(t *testing.T, q *Queue) []string {
	t.Helper()
	ids, err := q.st.Client().LRange(context.Background(), q.st.Keys().Key(keys.Wait), 0, -1).Result()
	require.NoError(t, err)
	sort.Strings(ids)
	return ids
}

func TestScheduleExactlyOncePerTickAcrossSchedulers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("cron", nil)
		t0 := time.Date(2026, 5, 4, 10, 0, 30, 0, time.UTC)
		at(q, t0)
		s, err := q.UpsertSchedule(ctx, "report", "*/15 * * * *", "build-report", []byte(`{}`), nil)
		require.NoError(t, err)
		require.Equal(t, t0.Truncate(15*time.Minute).Add(15*time.Minute), s.Next.UTC())
		const ticks, schedulers = 40, 3
		for i := 1; i <= ticks; i++ {
			now := t0.Truncate(15 * time.Minute).Add(time.Duration(i)*15*time.Minute + time.Duration(i%7)*time.Millisecond)
			var wg sync.WaitGroup
			fired := make(chan int, schedulers)
			for range schedulers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, _, err := runSchedules(ctx, q.st, now.UnixMilli(), now, discard)
					require.NoError(t, err)
					fired <- n
				}()
			}
			wg.Wait()
			close(fired)
			total := 0
			for n := range fired {
				total += n
			}
			require.Equal(t, 1, total, "tick %d: exactly one scheduler enqueues", i)
		}
		ids := waitingIDs(t, q)
		require.Len(t, ids, ticks, "one job per tick, no duplicates")
		s, err = q.GetSchedule(ctx, "report")
		require.NoError(t, err)
		require.EqualValues(t, ticks, s.Runs)
		require.EqualValues(t, 0, s.Skipped)
		j, err := q.Job(ctx, s.LastJobID)
		require.NoError(t, err)
		require.Equal(t, "build-report", j.Name)
		require.Equal(t, "report", j.Schedule)
		require.True(t, strings.HasPrefix(j.ID, "report@"))
	})
}

func TestScheduleDST(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		q := h.queue("dst", nil)
		start := time.Date(2026, 3, 6, 12, 0, 0, 0, ny)
		at(q, start)
		_, err = q.UpsertSchedule(ctx, "morning", "0 9 * * *", "n", nil, &ScheduleOptions{TimeZone: "America/New_York"})
		require.NoError(t, err)
		var fired []string
		for range 4 {
			s, err := q.GetSchedule(ctx, "morning")
			require.NoError(t, err)
			require.Equal(t, 1, schedPass(t, q, s.Next.Add(time.Millisecond)))
			fired = append(fired, s.Next.In(ny).Format("Jan 2 15:04 MST"))
		}
		require.Equal(t, []string{"Mar 7 09:00 EST", "Mar 8 09:00 EDT", "Mar 9 09:00 EDT", "Mar 10 09:00 EDT"}, fired)
	})
}

func TestScheduleMissedTicks(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		for _, c := range []struct {
			policy          MissedPolicy
			jobs            int
			skipped         int64
			latestJobSuffix string
		}{
			{MissedRunOnce, 1, 5, fmt.Sprint(t0.Add(90 * time.Minute).UnixMilli())},
			{MissedSkip, 0, 6, ""},
		} {
			q := h.queue(fmt.Sprint("missed", c.policy), nil)
			at(q, t0)
			_, err := q.UpsertSchedule(ctx, "s", "*/15 * * * *", "n", nil, &ScheduleOptions{Missed: c.policy})
			require.NoError(t, err)
			// Every scheduler was down from 10:15 to 11:35: ticks 10:15..11:30.
			now := t0.Add(95 * time.Minute)
			require.Equal(t, c.jobs, schedPass(t, q, now))
			require.Equal(t, 0, schedPass(t, q, now), "a second pass adds nothing")
			s, err := q.GetSchedule(ctx, "s")
			require.NoError(t, err)
			require.Equal(t, c.skipped, s.Skipped)
			require.Equal(t, t0.Add(105*time.Minute), s.Next.UTC(), "resumes at the next tick")
			ids := waitingIDs(t, q)
			require.Len(t, ids, c.jobs)
			if c.jobs == 1 {
				require.Equal(t, "s@"+c.latestJobSuffix, ids[0], "the latest missed tick runs")
			}
		}
	})
}

func TestScheduleSpecChange(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("change", nil)
		t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		at(q, t0.Add(time.Minute))
		_, err := q.UpsertSchedule(ctx, "s", "*/15 * * * *", "n", nil, nil)
		require.NoError(t, err)
		require.Equal(t, 1, schedPass(t, q, t0.Add(15*time.Minute)))
		// Between ticks: switch to every 10 minutes.
		at(q, t0.Add(16*time.Minute))
		s, err := q.UpsertSchedule(ctx, "s", "*/10 * * * *", "n", nil, nil)
		require.NoError(t, err)
		require.Equal(t, t0.Add(20*time.Minute), s.Next.UTC(), "the new spec's next tick")
		require.Equal(t, 0, schedPass(t, q, t0.Add(19*time.Minute)))
		require.Equal(t, 1, schedPass(t, q, t0.Add(20*time.Minute)))
		require.Equal(t, 1, schedPass(t, q, t0.Add(30*time.Minute)))
		require.Equal(t, 0, schedPass(t, q, t0.Add(30*time.Minute)))
		// Upserting the same spec again (every deploy) keeps the next tick.
		at(q, t0.Add(31*time.Minute))
		s, err = q.UpsertSchedule(ctx, "s", "*/10 * * * *", "n", nil, nil)
		require.NoError(t, err)
		require.Equal(t, t0.Add(40*time.Minute), s.Next.UTC())
		require.Len(t, waitingIDs(t, q), 3, "no duplicate, no gap")
		s, err = q.GetSchedule(ctx, "s")
		require.NoError(t, err)
		require.EqualValues(t, 3, s.Runs)
	})
}

func TestSchedulePauseResumeRemoveTrigger(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("admin", nil)
		t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		at(q, t0)
		_, err := q.UpsertSchedule(ctx, "a", "@hourly", "n", []byte("pa"), &ScheduleOptions{Job: &JobOptions{Attempts: 2, Priority: 4}})
		require.NoError(t, err)
		_, err = q.UpsertSchedule(ctx, "b", "0 9 * * 1", "m", nil, nil)
		require.NoError(t, err)
		list, err := q.Schedules(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)

		require.NoError(t, q.PauseSchedule(ctx, "a"))
		s, err := q.GetSchedule(ctx, "a")
		require.NoError(t, err)
		require.True(t, s.Paused)
		require.True(t, s.Next.IsZero())
		require.Equal(t, 0, schedPass(t, q, t0.Add(3*time.Hour)), "a paused schedule fires nothing")
		at(q, t0.Add(3*time.Hour+time.Minute))
		require.NoError(t, q.ResumeSchedule(ctx, "a"))
		s, err = q.GetSchedule(ctx, "a")
		require.NoError(t, err)
		require.Equal(t, t0.Add(4*time.Hour), s.Next.UTC(), "ticks during the pause are not run")

		j, err := q.TriggerSchedule(ctx, "a")
		require.NoError(t, err)
		require.Equal(t, "n", j.Name)
		require.Equal(t, "pa", string(j.Payload))
		require.Equal(t, 2, j.MaxAttempts)
		require.Equal(t, 4, j.Priority)
		require.Contains(t, j.ID, "a@manual-")

		require.NoError(t, q.RemoveSchedule(ctx, "a"))
		require.ErrorIs(t, q.RemoveSchedule(ctx, "a"), ErrScheduleNotFound)
		_, err = q.GetSchedule(ctx, "a")
		require.ErrorIs(t, err, ErrScheduleNotFound)
		require.ErrorIs(t, q.PauseSchedule(ctx, "a"), ErrScheduleNotFound)
		_, err = q.TriggerSchedule(ctx, "a")
		require.ErrorIs(t, err, ErrScheduleNotFound)
		_, err = q.Job(ctx, j.ID)
		require.NoError(t, err, "jobs a schedule enqueued stay")
	})
}

func TestScheduleBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("bad", nil)
		before := h.cmds.Load()
		for _, c := range []struct {
			key, spec, tz string
			opts          *ScheduleOptions
			field         string
		}{
			{"k", "61 * * * *", "", nil, "schedule spec"},
			{"k", "every tuesday", "", nil, "schedule spec"},
			{"k", "", "", nil, "schedule spec"},
			{"k", "@daily", "Nowhere/Atlantis", nil, "schedule spec"},
			{"", "@daily", "", nil, "schedule key"},
			{"a b", "@daily", "", nil, "schedule key"},
			{strings.Repeat("k", 151), "@daily", "", nil, "schedule key"},
			{"k", "@daily", "", &ScheduleOptions{Missed: 7}, "ScheduleOptions.Missed"},
			{"k", "@daily", "", &ScheduleOptions{Job: &JobOptions{ID: "x"}}, "ScheduleOptions.Job"},
			{"k", "@daily", "", &ScheduleOptions{Job: &JobOptions{Attempts: -1}}, "JobOptions.Attempts"},
		} {
			opts := c.opts
			if c.tz != "" {
				opts = &ScheduleOptions{TimeZone: c.tz}
			}
			_, err := q.UpsertSchedule(ctx, c.key, c.spec, "n", nil, opts)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "%+v", c)
			require.Equal(t, c.field, ve.Field)
			require.Contains(t, err.Error(), "hopper: invalid")
		}
		_, err := q.ScheduleRecurringAction(ctx, "billing:check", nil, "fortnightly", nil)
		require.ErrorIs(t, err, ErrInvalid)
		require.Contains(t, err.Error(), "fortnightly")
		require.Equal(t, before, h.cmds.Load(), "nothing was sent to Redis")
	})
}

func TestScheduledActions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("actions", nil)
		t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		at(q, t0)
		j, err := q.ScheduleAction(ctx, "webhook:send", []byte(`{"event":"task.created"}`),
			&JobOptions{Delay: time.Minute, Metadata: map[string]string{"teamId": "team-42"}})
		require.NoError(t, err)
		got, err := q.Job(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, StateDelayed, got.State)
		require.Equal(t, map[string]string{"teamId": "team-42"}, got.Metadata)
		require.Equal(t, t0.Add(time.Minute), got.DueAt.UTC())

		s, err := q.ScheduleRecurringAction(ctx, "billing:check-renewals", []byte(`{}`), "daily", nil)
		require.NoError(t, err)
		require.Equal(t, "billing:check-renewals", s.Key)
		require.Equal(t, "billing:check-renewals", s.JobName)
		require.Equal(t, time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC), s.Next.UTC())
		// Calling it again (next deploy) updates, never duplicates.
		_, err = q.ScheduleRecurringAction(ctx, "billing:check-renewals", []byte(`{}`), "0 6 * * *", nil)
		require.NoError(t, err)
		list, err := q.Schedules(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "0 6 * * *", list[0].Spec)

		_, err = q.Add(ctx, "n", nil, &JobOptions{Metadata: map[string]string{"": "x"}})
		require.ErrorIs(t, err, ErrInvalid)
	})
}

// Workers run the scheduler: an every-second schedule served by three
// workers yields one job per tick.
func TestScheduleRunsInWorkers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("live", nil)
		rec := newRecorder(nil)
		for range 3 {
			h.worker("live", rec, &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: 5 * time.Second})
		}
		_, err := q.UpsertSchedule(ctx, "tick", "@every 1s", "n", nil, nil)
		require.NoError(t, err)
		waitFor(t, 6*time.Second, "three ticks", func() bool { return rec.total() >= 3 })
		s, err := q.GetSchedule(ctx, "tick")
		require.NoError(t, err)
		for id, n := range rec.runs {
			require.Equal(t, 1, n, "job %s ran once", id)
		}
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, c.Completed+c.Active+c.Waiting, s.Runs)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.LessOrEqual(t, int64(len(rec.runs)), s.Runs)
	})
}

func TestUniqueWindow(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("uniq", nil)
		t0 := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
		u := &Unique{Key: "sync:team-1", Window: time.Minute}
		at(q, t0)
		a, err := q.Add(ctx, "sync", []byte("1"), &JobOptions{Unique: u})
		require.NoError(t, err)
		require.False(t, a.Duplicate)
		at(q, t0.Add(59*time.Second))
		b, err := q.Add(ctx, "sync", []byte("2"), &JobOptions{Unique: u})
		require.NoError(t, err)
		require.True(t, b.Duplicate)
		require.Equal(t, a.ID, b.ID)
		require.Equal(t, "1", string(b.Payload), "the existing job")
		// Even after the job is gone, the window holds.
		require.NoError(t, q.Remove(ctx, a.ID, nil))
		c, err := q.Add(ctx, "sync", nil, &JobOptions{Unique: u})
		require.NoError(t, err)
		require.True(t, c.Duplicate)
		require.Equal(t, a.ID, c.ID)
		require.Equal(t, State(""), c.State)
		// Past the window: a new job.
		at(q, t0.Add(60*time.Second+time.Millisecond))
		d, err := q.Add(ctx, "sync", []byte("3"), &JobOptions{Unique: u})
		require.NoError(t, err)
		require.False(t, d.Duplicate)
		require.NotEqual(t, a.ID, d.ID)
		// In a bulk add, against the store and within the batch.
		jobs, err := q.AddBulk(ctx, []NewJob{
			{Name: "sync", Options: &JobOptions{Unique: u}},
			{Name: "sync", Options: &JobOptions{Unique: &Unique{Key: "other", Window: time.Minute}}},
			{Name: "sync", Options: &JobOptions{Unique: &Unique{Key: "other", Window: time.Minute}}},
		})
		require.NoError(t, err)
		require.True(t, jobs[0].Duplicate)
		require.Equal(t, d.ID, jobs[0].ID)
		require.False(t, jobs[1].Duplicate)
		require.True(t, jobs[2].Duplicate)
		require.Equal(t, jobs[1].ID, jobs[2].ID)
		cnt, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 2, cnt.Waiting)
		for _, bad := range []*Unique{{Key: "", Window: time.Minute}, {Key: "k", Window: 0}, {Key: "k", Window: -time.Second}, {Key: "a b", Window: time.Second}} {
			_, err := q.Add(ctx, "n", nil, &JobOptions{Unique: bad})
			require.ErrorIs(t, err, ErrInvalid, "%+v", bad)
		}
		// Expired keys are trimmed from Redis by the maintenance pass.
		_, err = q.st.Promote(ctx, t0.Add(time.Hour).UnixMilli(), promoteBatch, "")
		require.NoError(t, err)
		n, err := q.st.Client().HLen(ctx, q.st.Keys().Key(keys.Uniq)).Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

func TestUpsertScheduleRegistersQueue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("onlyschedules", nil)
		_, err := q.UpsertSchedule(ctx, "nightly", "0 3 * * *", "report", nil, nil)
		require.NoError(t, err)
		names, err := ListQueues(ctx, h.client, h.prefix)
		require.NoError(t, err)
		require.Equal(t, []string{"onlyschedules"}, names, "a queue with only a schedule is listed")
	})
}

// A worker keeps the schedules declared with KeepSchedule registered: it
// writes them at start, and again after they vanish (removed by hand, or
// the queue's keys lost as when Redis restarts empty), and they fire again.
// Bad declarations are refused at once.
func TestKeepSchedule(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("kept", nil)
		rec := newRecorder(nil)
		w := h.newWorker("kept", rec, &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second})

		other := h.queue("other", nil)
		require.ErrorIs(t, w.KeepSchedule(other, "tick", "@every 1s", "n", nil, nil), ErrInvalid)
		foreign, err := NewQueue(h.client, "kept", &QueueConfig{Prefix: h.prefix + "x"})
		require.NoError(t, err)
		require.ErrorIs(t, w.KeepSchedule(foreign, "tick", "@every 1s", "n", nil, nil), ErrInvalid)
		require.ErrorIs(t, w.KeepSchedule(nil, "tick", "@every 1s", "n", nil, nil), ErrInvalid)
		require.ErrorIs(t, w.KeepSchedule(q, "tick", "every fortnight", "n", nil, nil), ErrInvalid)
		require.ErrorIs(t, w.KeepSchedule(q, "bad key", "@every 1s", "n", nil, nil), ErrInvalid)

		require.NoError(t, w.KeepSchedule(q, "tick", "@every 1s", "old", nil, nil))
		require.NoError(t, w.KeepSchedule(q, "tick", "@every 1s", "n", nil, nil)) // replaces the first
		require.NoError(t, w.KeepSchedule(q, "nightly", "0 3 * * *", "n", nil, &ScheduleOptions{Paused: true}))
		_, err = q.GetSchedule(ctx, "tick")
		require.ErrorIs(t, err, ErrScheduleNotFound, "nothing is written before Run")

		h.start(w)
		waitFor(t, 10*time.Second, "the kept schedule fires", func() bool { return rec.total() >= 1 })
		require.ErrorIs(t, w.KeepSchedule(q, "late", "@every 1s", "n", nil, nil), ErrWorkerClosed)
		s, err := q.GetSchedule(ctx, "tick")
		require.NoError(t, err)
		require.Equal(t, "n", s.JobName)
		s, err = q.GetSchedule(ctx, "nightly")
		require.NoError(t, err)
		require.True(t, s.Paused)

		require.NoError(t, q.RemoveSchedule(ctx, "tick"))
		waitFor(t, 10*time.Second, "a removed kept schedule is written again", func() bool {
			_, err := q.GetSchedule(ctx, "tick")
			return err == nil
		})

		// The queue's keys vanish (a Redis without persistence restarted).
		require.NoError(t, q.Obliterate(ctx, &ObliterateOptions{Force: true}))
		_, err = q.GetSchedule(ctx, "nightly")
		require.ErrorIs(t, err, ErrScheduleNotFound)
		waitFor(t, 10*time.Second, "both kept schedules are written again", func() bool {
			_, e1 := q.GetSchedule(ctx, "tick")
			_, e2 := q.GetSchedule(ctx, "nightly")
			return e1 == nil && e2 == nil
		})
		n := rec.total()
		waitFor(t, 10*time.Second, "the kept schedule fires again", func() bool { return rec.total() > n })
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for id, c := range rec.runs {
			require.Equal(t, 1, c, "tick job %s ran once", id)
		}
	})
}
