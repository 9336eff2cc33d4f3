package hopper_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// startExample starts an embedded Redis, a queue and a worker running
// handler, and returns the queue and a func that stops everything.
func startExample(name string, handler hopper.Handler) (*hopper.Queue, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	q, err := hopper.NewQueue(rdb, name, nil)
	if err != nil {
		panic(err)
	}
	w, err := hopper.NewWorker(rdb, name, handler, &hopper.WorkerConfig{
		Concurrency: 1,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(context.Background()) }()
	return q, func() {
		_ = w.Close()
		<-stopped
		rdb.Close()
		mr.Close()
	}
}

// Wait blocks until a job is done, following the queue's event stream
// rather than polling the job: the request-reply pattern (an API handler
// that enqueues work and answers with its result).
func ExampleQueue_Wait() {
	q, stop := startExample("thumbnails", hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		if string(job.Payload) == "corrupt.png" {
			return hopper.Permanent(errors.New("not an image"))
		}
		job.SetResult([]byte("thumb-" + string(job.Payload)))
		return nil
	}))
	defer stop()
	ctx := context.Background()

	ok, _ := q.Add(ctx, "resize", []byte("cat.png"), nil)
	bad, _ := q.Add(ctx, "resize", []byte("corrupt.png"), &hopper.JobOptions{Attempts: 1})

	job, err := q.Wait(ctx, ok.ID)
	fmt.Println(job.State, string(job.Result), err)
	job, err = q.Wait(ctx, bad.ID)
	fmt.Println(job.State, errors.Is(err, hopper.ErrJobDead))
	// Output:
	// completed thumb-cat.png <nil>
	// dead true
}

// Events follows what happens to the queue's jobs from any process, like
// BullMQ's QueueEvents. Here a job fails once, is retried and completes.
func ExampleQueue_Events() {
	attempts := 0
	q, stop := startExample("emails", hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		attempts++
		if attempts == 1 {
			return errors.New("SMTP timeout")
		}
		return nil
	}))
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	job, _ := q.Add(ctx, "welcome", nil, &hopper.JobOptions{Backoff: hopper.Fixed(1)})
	// "0": from the oldest event kept, so none is missed.
	for ev, err := range q.Events(ctx, "0") {
		if err != nil || ev.JobID != job.ID {
			break
		}
		switch ev.Type {
		case hopper.EventActive:
			fmt.Println(ev.Type, "attempt", ev.Attempt)
		case hopper.EventFailed:
			fmt.Println(ev.Type, ev.Error)
		default:
			fmt.Println(ev.Type)
		}
		if ev.Type == hopper.EventCompleted {
			break
		}
	}
	// Output:
	// added
	// active attempt 1
	// failed SMTP timeout
	// retrying
	// active attempt 2
	// completed
}

// Stats is what a dashboard or a health check reads: counts per state, the
// age of the oldest waiting job, per-minute throughput and live workers.
func ExampleQueue_Stats() {
	q, stop := startExample("reports", hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		if job.Name == "broken" {
			return hopper.Permanent(errors.New("template missing"))
		}
		return nil
	}))
	defer stop()
	ctx := context.Background()

	var last *hopper.Job
	for _, name := range []string{"daily", "weekly", "broken"} {
		last, _ = q.Add(ctx, name, nil, nil)
	}
	_, _ = q.Wait(ctx, last.ID)

	st, err := q.Stats(ctx)
	if err != nil {
		panic(err)
	}
	var done, failed int64
	for _, m := range st.Minutes {
		done += m.Completed
		failed += m.Failed
	}
	fmt.Printf("completed=%d dead=%d waiting=%d\n", st.Completed, st.Dead, st.Waiting)
	fmt.Printf("last hour: %d completed, %d failed\n", done, failed)
	fmt.Println("workers:", len(st.Workers), "concurrency", st.Workers[0].Concurrency)
	// Output:
	// completed=2 dead=1 waiting=0
	// last hour: 2 completed, 1 failed
	// workers: 1 concurrency 1
}
