package hopper_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hopperq/hopper"
)

// Admin calls on a queue of 100,000 jobs (70k waiting, 10k delayed, 15k
// completed, 5k dead), to show that none of them walks a whole set:
//
//	HOPPER_TEST_REDIS_ADDR=127.0.0.1:6379 go test -run xxx -bench 'Admin' -benchtime 1x ./
//
// Use -benchtime 1x (or a small count): every op of BenchmarkAdminBatch100k
// rebuilds the 100k-job queue it empties, outside the timer.

const (
	fixWaiting   = 70000
	fixDelayed   = 10000
	fixCompleted = 15000
	fixDead      = 5000
)

// fillAdminFixture builds the 100k-job queue: it runs 20k jobs to completion
// or death with a worker, then adds the waiting and delayed ones.
func fillAdminFixture(b *testing.B, e *benchEnv, q *hopper.Queue) {
	b.Helper()
	ctx := context.Background()
	keep := &hopper.Retention{Count: 1_000_000}
	add := func(n int, name string, opts *hopper.JobOptions) {
		for i := 0; i < n; i += 1000 {
			jobs := make([]hopper.NewJob, min(1000, n-i))
			for k := range jobs {
				jobs[k] = hopper.NewJob{Name: name, Payload: benchPayload, Options: opts}
			}
			if _, err := q.AddBulk(ctx, jobs); err != nil {
				b.Fatal(err)
			}
		}
	}
	add(fixCompleted, "ok", &hopper.JobOptions{KeepCompleted: keep})
	add(fixDead, "bad", &hopper.JobOptions{KeepDead: keep})
	w, err := hopper.NewWorker(e.client, q.Name(), hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		if j.Name == "bad" {
			return hopper.Permanent(errors.New("bad"))
		}
		return nil
	}), &hopper.WorkerConfig{Prefix: q.Prefix(), Concurrency: 100, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for {
		c, err := q.Counts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if c.Completed == fixCompleted && c.Dead == fixDead {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a fixture's progress, outside any timer
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	add(fixWaiting, "wait", nil)
	add(fixDelayed, "later", &hopper.JobOptions{Delay: time.Hour})
}

// BenchmarkAdmin100k times the read-only admin calls on a 100k-job queue.
func BenchmarkAdmin100k(b *testing.B) {
	e := newBenchEnv(b)
	q := e.queue(b)
	fillAdminFixture(b, e, q)
	ctx := context.Background()
	some, err := q.Jobs(ctx, hopper.StateWaiting, 0, 1)
	if err != nil || len(some) != 1 {
		b.Fatal(err)
	}
	calls := []struct {
		name string
		fn   func() error
	}{
		{"Counts", func() error { _, err := q.Counts(ctx); return err }},
		{"Stats", func() error { _, err := q.Stats(ctx); return err }},
		{"Job", func() error { _, err := q.Job(ctx, some[0].ID); return err }},
		{"Jobs/waiting/first-page-50", func() error { _, err := q.Jobs(ctx, hopper.StateWaiting, 0, 50); return err }},
		{"Jobs/waiting/page-50-at-60000", func() error { _, err := q.Jobs(ctx, hopper.StateWaiting, 60000, 50); return err }},
		{"Jobs/completed/page-50-at-10000", func() error { _, err := q.Jobs(ctx, hopper.StateCompleted, 10000, 50); return err }},
		{"Jobs/delayed/page-1000", func() error { _, err := q.Jobs(ctx, hopper.StateDelayed, 0, 1000); return err }},
		{"DeadLetters/List-50", func() error { _, err := q.DeadLetters().List(ctx, 0, 50); return err }},
		{"ReadEvents-1000-entries", func() error { _, err := q.ReadEvents(ctx, "0", 1000); return err }},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAdminBatch100k times the admin calls that change many jobs, each
// op on a freshly built 100k-job queue.
func BenchmarkAdminBatch100k(b *testing.B) {
	ctx := context.Background()
	calls := []struct {
		name string
		fn   func(q *hopper.Queue) (int64, error)
		want int64
	}{
		{"Clean/completed-15k", func(q *hopper.Queue) (int64, error) { return q.Clean(ctx, hopper.StateCompleted, 0, 0) }, fixCompleted},
		{"RetryAll/dead-5k", func(q *hopper.Queue) (int64, error) { return q.RetryAll(ctx, hopper.StateDead) }, fixDead},
		{"Drain/waiting+delayed-80k", func(q *hopper.Queue) (int64, error) { return q.Drain(ctx, true) }, fixWaiting + fixDelayed},
		{"Obliterate/100k", func(q *hopper.Queue) (int64, error) { return 0, q.Obliterate(ctx, nil) }, 0},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			e := newBenchEnv(b)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				q, err := hopper.NewQueue(e.client, fmt.Sprint("admin", i), &hopper.QueueConfig{Prefix: e.prefix})
				if err != nil {
					b.Fatal(err)
				}
				fillAdminFixture(b, e, q)
				b.StartTimer()
				n, err := c.fn(q)
				if err != nil {
					b.Fatal(err)
				}
				if n != c.want {
					b.Fatalf("%s: %d jobs, want %d", c.name, n, c.want)
				}
			}
		})
	}
}
