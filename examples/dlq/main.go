// Command dlq shows the dead-letter queue: jobs that exhaust their attempts
// (or fail permanently) land there with their last error and the reason
// they died; an operator inspects them, retries the one whose cause was
// fixed, and purges the rest.
//
//	go run ./examples/dlq            # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/dlq
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example"); err != nil {
		fmt.Fprintln(os.Stderr, "dlq:", err)
		os.Exit(1)
	}
}

// invoices is the fake billing API: invoice 2's customer has no card on
// file until the operator fixes it.
type invoices struct {
	mu    sync.Mutex
	fixed bool
}

func (b *invoices) charge(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case id == "invoice-2" && !b.fixed:
		return errors.New("no card on file")
	case id == "invoice-3", id == "invoice-4":
		return hopper.Permanent(errors.New("customer deleted"))
	}
	return nil
}

func run(ctx context.Context, out io.Writer, redisURL, prefix string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()
	q, err := hopper.NewQueue(rdb, "billing", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	billing := &invoices{}
	dead := make(chan string, 4)
	w, err := hopper.NewWorker(rdb, "billing", hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		return billing.charge(job.ID)
	}), &hopper.WorkerConfig{Prefix: prefix, Logger: slog.New(slog.DiscardHandler),
		OnDead: func(ctx context.Context, job *hopper.Job, err error) { dead <- job.ID }})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Close(); <-stopped }()

	// Three attempts, 10 ms apart: invoice 2 exhausts them; invoices 3 and 4
	// fail permanently at once.
	for i := 1; i <= 4; i++ {
		if _, err := q.Add(ctx, "charge", nil, &hopper.JobOptions{ID: fmt.Sprintf("invoice-%d", i),
			Attempts: 3, Backoff: hopper.Fixed(10 * time.Millisecond)}); err != nil {
			return err
		}
	}
	for range 3 {
		select {
		case <-dead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	dlq := q.DeadLetters()
	n, err := dlq.Len(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dead-letter queue: %d jobs\n", n)
	jobs, err := dlq.List(ctx, 0, 10)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		fmt.Fprintf(out, "  %-10s attempts %d/%d  error %q  reason %q\n", j.ID, j.AttemptsMade, j.MaxAttempts, j.LastError, j.DeadReason)
	}

	// The card was added: retry invoice 2 (its attempts start again).
	billing.mu.Lock()
	billing.fixed = true
	billing.mu.Unlock()
	if err := dlq.Retry(ctx, "invoice-2"); err != nil {
		return err
	}
	j, err := q.Wait(ctx, "invoice-2")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "retried invoice-2: %s after %d attempt(s)\n", j.State, j.AttemptsMade)

	// The deleted customers' invoices will never succeed: purge them.
	purged, err := dlq.Purge(ctx)
	if err != nil {
		return err
	}
	left, err := dlq.Len(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "purged %d dead jobs; %d left\n", purged, left)
	return nil
}
