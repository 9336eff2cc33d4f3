// Command quickstart is hopper in one file: a queue, a worker and three jobs.
// One succeeds, one fails once and succeeds on its retry, and one fails on
// every attempt and ends in the dead-letter queue.
//
//	go run ./examples/quickstart                                  # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/quickstart # your Redis
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

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Getenv("REDIS_URL"), hopper.DefaultPrefix); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// Email is the payload of a "welcome-email" job: payloads are bytes, usually
// JSON, which JSONHandler decodes for you.
type Email struct {
	To string `json:"to"`
}

// run connects to redisURL (an embedded Redis when it is empty), processes
// the three jobs and writes what happens to out. prefix is the key prefix
// (tests pass a unique one to share a Redis server safely).
func run(ctx context.Context, out io.Writer, redisURL, prefix string) error {
	if redisURL == "" { // no Redis given: start an embedded one
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		redisURL = "redis://" + mr.Addr()
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt) // hopper takes any go-redis client and never closes it
	defer rdb.Close()

	// Hooks run on the jobs' goroutines, so serialise the printing.
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}

	// The handler: a Mux routes each job to a function by the job's name.
	mux := hopper.NewMux()
	mux.Handle("welcome-email", hopper.JSONHandler(func(ctx context.Context, job *hopper.Job, e Email) error {
		return nil // pretend we sent an email to e.To
	}))
	mux.HandleFunc("sync-crm", func(ctx context.Context, job *hopper.Job) error {
		if job.AttemptsMade == 0 { // the first attempt fails, the retry works
			return errors.New("CRM unavailable")
		}
		return nil
	})
	mux.HandleFunc("charge-card", func(ctx context.Context, job *hopper.Job) error {
		return errors.New("card declined") // fails on every attempt
	})

	// The worker runs the handler. Short leases and polls suit a demo; the
	// hooks report each outcome once it is stored in Redis.
	w, err := hopper.NewWorker(rdb, "quickstart", mux, &hopper.WorkerConfig{
		Prefix:        prefix,
		LeaseDuration: 2 * time.Second,
		PollInterval:  time.Second,
		Logger:        slog.New(slog.DiscardHandler),
		OnCompleted: func(ctx context.Context, job *hopper.Job) {
			say("completed %-13s after %d attempt(s)", job.Name, job.AttemptsMade)
		},
		OnFailed: func(ctx context.Context, job *hopper.Job, err error) {
			say("failed    %-13s attempt %d: %v (will retry)", job.Name, job.AttemptsMade, err)
		},
		OnDead: func(ctx context.Context, job *hopper.Job, err error) {
			say("dead      %-13s attempt %d: %v", job.Name, job.AttemptsMade, err)
		},
	})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }() // Run blocks until the worker stops
	defer w.Close()                       // on an early return: stop at once (no-op after Shutdown)

	// The producer side: add the three jobs in one round trip. Failed
	// attempts are retried after 200ms (a Fixed backoff; the default is
	// exponential from 1s) until the job's Attempts are spent (default 25).
	q, err := hopper.NewQueue(rdb, "quickstart", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	retry := hopper.Fixed(200 * time.Millisecond)
	jobs, err := q.AddBulk(ctx, []hopper.NewJob{
		{Name: "welcome-email", Payload: []byte(`{"to":"ada@example.com"}`)},
		{Name: "sync-crm", Payload: []byte(`{"contact":7}`), Options: &hopper.JobOptions{Attempts: 3, Backoff: retry}},
		{Name: "charge-card", Payload: []byte(`{"cents":1999}`), Options: &hopper.JobOptions{Attempts: 2, Backoff: retry}},
	})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		say("added     %-13s (%s)", j.Name, j.State)
	}

	// Wait until every job reached its final state: completed or dead.
	var dead *hopper.Job
	for _, added := range jobs {
		j, err := waitFinal(ctx, q, added.ID)
		if err != nil {
			return err
		}
		if j.State == hopper.StateDead {
			dead = j
		}
	}

	// Stop the worker gracefully; this also waits for the last hooks.
	if err := w.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-stopped; err != nil {
		return err
	}

	// Jobs per state. (On your own Redis they include earlier runs' jobs:
	// completed jobs are kept for 24h, dead ones for 180 days, by default.)
	c, err := q.Counts(ctx)
	if err != nil {
		return err
	}
	say("counts: waiting=%d active=%d delayed=%d failed=%d completed=%d dead=%d",
		c.Waiting, c.Active, c.Delayed, c.Failed, c.Completed, c.Dead)
	if dead != nil {
		say("dead job %s: %s", dead.Name, dead.DeadReason)
	}
	return nil
}

// waitFinal polls job id until it is completed or dead, or ctx ends.
func waitFinal(ctx context.Context, q *hopper.Queue, id string) (*hopper.Job, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := q.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State == hopper.StateCompleted || j.State == hopper.StateDead {
			return j, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("job %s (%s) still %s: %w", id, j.Name, j.State, ctx.Err())
		}
	}
}
