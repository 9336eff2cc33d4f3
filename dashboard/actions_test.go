package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
)

func TestRetryAllFailed(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.seed()
		loc := e.actionOK("/queues/email/actions/retry-all", url.Values{"state": {"failed"}})
		require.Contains(t, loc, "done=retriedall&n=1")
		require.Equal(t, hopper.StateWaiting, stateOf(t, q, "f1"))
	})
}

func TestRemoveActiveJob(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.queue("slow")
		release := make(chan struct{})
		w, err := hopper.NewWorker(b.Client, "slow", hopper.HandlerFunc(func(ctx context.Context, _ *hopper.Job) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}), &hopper.WorkerConfig{Prefix: b.Prefix, Logger: quiet, PollInterval: time.Second, LeaseDuration: 2 * time.Second})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- w.Run(context.Background()) }()
		t.Cleanup(func() {
			close(release)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = w.Shutdown(ctx)
			require.NoError(t, <-done)
		})
		_, err = q.Add(context.Background(), "s", nil, &hopper.JobOptions{ID: "a1"})
		require.NoError(t, err)
		waitState(t, q, "a1", hopper.StateActive)
		require.Contains(t, e.get("/queues/slow/jobs/a1"), "Force remove")
		require.Contains(t, e.get("/queues/slow?state=active"), "jobs/a1")
		res := e.post("/queues/slow/actions/remove", url.Values{"id": {"a1"}})
		require.Equal(t, http.StatusConflict, res.Code)
		require.Contains(t, res.Body.String(), "running on a worker")
		require.Equal(t, hopper.StateActive, stateOf(t, q, "a1"))
		e.actionOK("/queues/slow/actions/remove", url.Values{"id": {"a1"}, "force": {"1"}})
		require.Equal(t, hopper.State(""), stateOf(t, q, "a1"))
	})
}

func TestScheduleActions(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.queue("cron")
		ctx := context.Background()
		_, err := q.UpsertSchedule(ctx, "daily/report", "@daily", "report", []byte(`{}`), nil)
		require.NoError(t, err)
		_, err = q.Add(ctx, "seed", nil, nil) // registers the queue
		require.NoError(t, err)
		body := e.get("/schedules")
		require.Contains(t, body, "daily/report")
		require.Contains(t, body, "Run now")

		loc := e.actionOK("/queues/cron/actions/trigger", url.Values{"key": {"daily/report"}, "back": {"schedules"}})
		require.Equal(t, "../../../schedules?done=triggered", loc)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(2), c.Waiting, "the triggered job was added")

		e.actionOK("/queues/cron/actions/schedule-pause", url.Values{"key": {"daily/report"}, "back": {"schedules"}})
		s, err := q.GetSchedule(ctx, "daily/report")
		require.NoError(t, err)
		require.True(t, s.Paused)
		require.Contains(t, e.get("/schedules"), `class="badge paused"`)
		e.actionOK("/queues/cron/actions/schedule-resume", url.Values{"key": {"daily/report"}, "back": {"schedules"}})
		s, err = q.GetSchedule(ctx, "daily/report")
		require.NoError(t, err)
		require.False(t, s.Paused)
		require.Equal(t, http.StatusNotFound, e.post("/queues/cron/actions/trigger", url.Values{"key": {"nope"}}).Code)
	})
}

func TestDrainDelayed(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.seed()
		require.Contains(t, e.get("/queues/email?state=delayed"), "Drain waiting and delayed")
		loc := e.actionOK("/queues/email/actions/drain", url.Values{"state": {"delayed"}, "delayed": {"1"}})
		require.Contains(t, loc, "done=drained&n=2")
		require.Contains(t, loc, "state=delayed")
		c, err := q.Counts(context.Background())
		require.NoError(t, err)
		require.Zero(t, c.Waiting)
		require.Zero(t, c.Delayed)
		require.Equal(t, int64(1), c.Failed, "failed jobs stay")
	})
}
