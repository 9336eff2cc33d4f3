package hopper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An idle worker on a quiet queue costs Redis one blocking read per
// PollInterval and one maintenance call per 4 PollIntervals (no recover call
// while nothing is leased, no fetch while nothing is ready). No polling storm.
func TestIdleWorkerCommands(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		h.worker("idle", newRecorder(nil), &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second})
		time.Sleep(500 * time.Millisecond) // let start-up settle
		before := h.cmds.Load()
		const window = 4 * time.Second // one quiet maintenance cycle
		time.Sleep(window)             // the measurement window
		perSec := float64(h.cmds.Load()-before) / window.Seconds()
		t.Logf("%s: idle worker sends %.2f commands/s at PollInterval 1s", h.name, perSec)
		require.LessOrEqual(t, perSec, 2.5, "about 4 blocking reads and 1 maintenance call per 4 s (was 4/s before quiet passes)")
		require.GreaterOrEqual(t, perSec, 0.75, "the blocking reader keeps waiting")
	})
}

// A quiet worker still notices another worker's crash: once a job is
// leased, its maintenance is back at PollInterval pace and recovers the
// job after its lease expires.
func TestQuietWorkerStillRecovers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("quietrecover", nil)
		h.worker("quietrecover", newRecorder(nil), &WorkerConfig{LeaseDuration: 2 * time.Second, PollInterval: time.Second})
		time.Sleep(1500 * time.Millisecond) // the worker has gone quiet (4 s interval)
		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "orphan", Delay: time.Hour})
		require.NoError(t, err)
		// A crashed worker's claim: promoted and leased for 1 s behind the
		// live worker's back (its blocking reader may see the marker first;
		// then it simply runs the job).
		require.NoError(t, q.Promote(ctx, "orphan"))
		start := time.Now()
		_, _ = q.st.Fetch(ctx, 0, 1, 1000)
		j := waitState(t, q, "orphan", StateCompleted, 10*time.Second)
		t.Logf("%s: completed %v after the claim (stalls %d)", h.name, time.Since(start).Round(time.Millisecond), j.Stalls)
		require.Less(t, time.Since(start), 1*time.Second+4*time.Second+2*time.Second,
			"recovered within the lease plus one quiet interval")
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
