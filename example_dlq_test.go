package hopper_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// Jobs that cannot succeed end in the dead-letter queue with their last
// error and the reason they died. From there they can be listed, retried
// (back to waiting, attempts reset) or purged.
func ExampleDeadLetterQueue() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	q, err := hopper.NewQueue(rdb, "orders", nil)
	if err != nil {
		panic(err)
	}

	// A worker whose handler never succeeds: a Permanent error for bad
	// input, a plain error (retried while attempts remain) otherwise.
	handler := hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		if string(job.Payload) == "bad" {
			return hopper.Permanent(errors.New("malformed order"))
		}
		return errors.New("warehouse offline")
	})
	died := make(chan string, 3)
	w, err := hopper.NewWorker(rdb, "orders", handler, &hopper.WorkerConfig{
		Concurrency: 1,
		Logger:      slog.New(slog.DiscardHandler),
		OnDead:      func(ctx context.Context, job *hopper.Job, err error) { died <- job.ID },
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()

	for _, j := range []struct{ id, payload string }{{"order-1", "bad"}, {"order-2", "ok"}, {"order-3", "bad"}} {
		if _, err := q.Add(ctx, "ship", []byte(j.payload), &hopper.JobOptions{ID: j.id, Attempts: 1}); err != nil {
			panic(err)
		}
	}
	for range 3 {
		<-died
	}
	// Stop the worker, so that a retried job stays waiting for this example.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		panic(err)
	}
	<-stopped

	dlq := q.DeadLetters()
	n, err := dlq.Len(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("dead jobs:", n)
	dead, err := dlq.List(ctx, 0, 10) // newest first
	if err != nil {
		panic(err)
	}
	for _, j := range dead {
		fmt.Printf("  %s: %s\n", j.ID, j.DeadReason)
	}

	// Retry moves a dead job back to waiting with its attempts reset; its
	// last error is kept for reference.
	if err := dlq.Retry(ctx, "order-2"); err != nil {
		panic(err)
	}
	j, err := q.Job(ctx, "order-2")
	if err != nil {
		panic(err)
	}
	fmt.Printf("retried %s: %s, %d attempts made, last error %q\n", j.ID, j.State, j.AttemptsMade, j.LastError)

	// Purge deletes every dead job.
	purged, err := dlq.Purge(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("purged:", purged)
	_, err = q.Job(ctx, "order-1")
	fmt.Println("order-1 gone:", errors.Is(err, hopper.ErrJobNotFound))

	counts, err := q.Counts(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("waiting %d, dead %d\n", counts.Waiting, counts.Dead)
	// Output:
	// dead jobs: 3
	//   order-3: permanent failure: malformed order
	//   order-2: attempts exhausted: 1 of 1 failed
	//   order-1: permanent failure: malformed order
	// retried order-2: waiting, 0 attempts made, last error "warehouse offline"
	// purged: 2
	// order-1 gone: true
	// waiting 1, dead 0
}
