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

// A handler that returns an error fails the attempt: the job waits for its
// backoff in the failed state, then runs again, until it succeeds or its
// attempts are spent. OnFailed reports each failed attempt.
func Example_retry() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	// The CRM is down for the first two attempts.
	handler := hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		attempt := job.AttemptsMade + 1
		fmt.Println("attempt", attempt)
		if attempt < 3 {
			return errors.New("crm unavailable")
		}
		return nil
	})
	done := make(chan *hopper.Job, 1)
	w, err := hopper.NewWorker(rdb, "crm", handler, &hopper.WorkerConfig{
		Concurrency: 1,
		Logger:      slog.New(slog.DiscardHandler),
		OnFailed: func(ctx context.Context, job *hopper.Job, err error) {
			fmt.Printf("  failed (%v), %s; retry in %s\n", err, job.State, job.Backoff.Delay(time.Now(), job.AttemptsMade))
		},
		OnCompleted: func(ctx context.Context, job *hopper.Job) { done <- job },
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Shutdown(ctx); <-stopped }()

	q, err := hopper.NewQueue(rdb, "crm", nil)
	if err != nil {
		panic(err)
	}
	_, err = q.Add(ctx, "sync-contact", []byte("contact 7"), &hopper.JobOptions{
		ID:       "sync-contact-7",
		Attempts: 5,
		Backoff:  hopper.Fixed(20 * time.Millisecond),
	})
	if err != nil {
		panic(err)
	}
	job := <-done
	fmt.Printf("%s completed after %d of %d attempts\n", job.ID, job.AttemptsMade, job.MaxAttempts)
	// Output:
	// attempt 1
	//   failed (crm unavailable), failed; retry in 20ms
	// attempt 2
	//   failed (crm unavailable), failed; retry in 20ms
	// attempt 3
	// sync-contact-7 completed after 3 of 5 attempts
}

// RetryAfter reschedules a job without spending an attempt, for failures
// that say when to come back, such as HTTP 429 with Retry-After. The job is
// delayed, not failed, and no hook fires for the snooze.
func ExampleRetryAfter() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	runs := 0
	handler := hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		runs++ // Concurrency 1: one run at a time
		fmt.Printf("run %d, attempts made so far: %d\n", runs, job.AttemptsMade)
		if runs == 1 {
			return hopper.RetryAfter(30*time.Millisecond, errors.New("429 too many requests"))
		}
		return nil
	})
	done := make(chan *hopper.Job, 1)
	w, err := hopper.NewWorker(rdb, "api", handler, &hopper.WorkerConfig{
		Concurrency: 1,
		Logger:      slog.New(slog.DiscardHandler),
		OnCompleted: func(ctx context.Context, job *hopper.Job) { done <- job },
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Shutdown(ctx); <-stopped }()

	q, err := hopper.NewQueue(rdb, "api", nil)
	if err != nil {
		panic(err)
	}
	if _, err := q.Add(ctx, "call-partner", nil, &hopper.JobOptions{ID: "call-1", Attempts: 1}); err != nil {
		panic(err)
	}
	<-done
	j, err := q.Job(ctx, "call-1")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %s, %d of %d attempts made; last error: %s\n", j.ID, j.State, j.AttemptsMade, j.MaxAttempts, j.LastError)
	// Output:
	// run 1, attempts made so far: 0
	// run 2, attempts made so far: 0
	// call-1: completed, 1 of 1 attempts made; last error: 429 too many requests (retry after 30ms)
}

// Permanent marks a failure that retrying cannot fix: the job goes straight
// to the dead-letter queue, whatever attempts it has left.
func ExamplePermanent() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	handler := hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		return hopper.Permanent(fmt.Errorf("card %s is invalid", job.Payload))
	})
	dead := make(chan *hopper.Job, 1)
	w, err := hopper.NewWorker(rdb, "payments", handler, &hopper.WorkerConfig{
		Logger: slog.New(slog.DiscardHandler),
		OnDead: func(ctx context.Context, job *hopper.Job, err error) {
			var perm *hopper.PermanentError
			fmt.Println("permanent:", errors.As(err, &perm))
			dead <- job
		},
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Shutdown(ctx); <-stopped }()

	q, err := hopper.NewQueue(rdb, "payments", nil)
	if err != nil {
		panic(err)
	}
	if _, err := q.Add(ctx, "charge", []byte("0000"), &hopper.JobOptions{ID: "charge-9"}); err != nil {
		panic(err)
	}
	<-dead
	j, err := q.Job(ctx, "charge-9")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %s after %d of %d attempts\n", j.ID, j.State, j.AttemptsMade, j.MaxAttempts)
	fmt.Println("reason:", j.DeadReason)
	// Output:
	// permanent: true
	// charge-9: dead after 1 of 25 attempts
	// reason: permanent failure: card 0000 is invalid
}
