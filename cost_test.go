package hopper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An idle worker costs Redis a handful of commands per PollInterval: one
// blocking read, one promote, one recover and one fetch. No polling storm.
func TestIdleWorkerCommands(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.worker("idle", newRecorder(nil), &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second})
		time.Sleep(500 * time.Millisecond) // let start-up settle
		before := h.cmds.Load()
		const window = 3 * time.Second
		time.Sleep(window) // the measurement window
		perSec := float64(h.cmds.Load()-before) / window.Seconds()
		t.Logf("%s: idle worker sends %.2f commands/s at PollInterval 1s", h.name, perSec)
		require.LessOrEqual(t, perSec, 5.0)
		require.Greater(t, perSec, 0.0, "the maintenance pass runs")
	})
}

// Commands per job with a backlog: jobs are claimed in batches and their
// acks written in batches, so a job costs a fraction of a round trip.
func TestCommandsPerJobUnderBacklog(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("cost", nil)
		const n = 500
		var jobs []NewJob
		for i := range n {
			jobs = append(jobs, NewJob{Name: "n", Payload: []byte(fmt.Sprint(i))})
		}
		added, err := q.AddBulk(ctx, jobs)
		require.NoError(t, err)
		before := h.cmds.Load()
		done := make(chan struct{}, n)
		h.worker("cost", newRecorder(nil), &WorkerConfig{Concurrency: 20, LeaseDuration: 5 * time.Second, PollInterval: 5 * time.Second,
			OnCompleted: func(context.Context, *Job) { done <- struct{}{} }})
		for range n {
			<-done
		}
		perJob := float64(h.cmds.Load()-before) / n
		t.Logf("%s: %.2f commands per processed job (concurrency 20, backlog %d)", h.name, perJob, n)
		require.LessOrEqual(t, perJob, 1.0, "fetches and acks are batched")
		got, err := q.Job(ctx, added[n-1].ID)
		require.NoError(t, err)
		require.Equal(t, StateCompleted, got.State)
	})
}
