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

// Signup is the payload of a "welcome" job.
type Signup struct {
	Email string `json:"email"`
	Plan  string `json:"plan"`
}

// A Worker runs a Handler on the jobs of a queue. A Mux routes jobs to
// handlers by name; JSONHandler decodes each payload into a typed value.
// Hooks report each outcome after it is stored in Redis; Shutdown stops the
// worker gracefully, like http.Server.Shutdown.
func ExampleWorker() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	mux := hopper.NewMux()
	mux.Handle("welcome", hopper.JSONHandler(func(ctx context.Context, job *hopper.Job, s Signup) error {
		fmt.Printf("sending the %s welcome email to %s\n", s.Plan, s.Email)
		job.SetResult([]byte("sent"))
		return nil
	}))

	done := make(chan *hopper.Job, 1)
	w, err := hopper.NewWorker(rdb, "email", mux, &hopper.WorkerConfig{
		Concurrency: 4,
		Logger:      slog.New(slog.DiscardHandler),
		OnCompleted: func(ctx context.Context, job *hopper.Job) { done <- job },
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }() // Run blocks until Shutdown (or ctx ends)

	q, err := hopper.NewQueue(rdb, "email", nil)
	if err != nil {
		panic(err)
	}
	if _, err := q.AddJSON(ctx, "welcome", Signup{Email: "ada@example.com", Plan: "pro"},
		&hopper.JobOptions{ID: "welcome-ada"}); err != nil {
		panic(err)
	}

	job := <-done // the hook fired: the completion is recorded
	fmt.Println("completed", job.ID, "after", job.AttemptsMade, "attempt")

	stored, err := q.Job(ctx, "welcome-ada")
	if err != nil {
		panic(err)
	}
	fmt.Printf("stored: %s, result %q\n", stored.State, stored.Result)

	// Shutdown stops fetching, waits for running handlers (bounded by its
	// ctx) and returns; Run then returns nil.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		panic(err)
	}
	fmt.Println("run returned:", <-stopped)
	// Output:
	// sending the pro welcome email to ada@example.com
	// completed welcome-ada after 1 attempt
	// stored: completed, result "sent"
	// run returned: <nil>
}

// KeepSchedule declares a recurring schedule next to the worker that runs
// its jobs: Run writes it, and the worker writes it again if Redis loses it.
func ExampleWorker_KeepSchedule() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	q, err := hopper.NewQueue(rdb, "reports", nil)
	if err != nil {
		panic(err)
	}
	ran := make(chan string, 10)
	w, err := hopper.NewWorker(rdb, "reports", hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		ran <- job.Name
		return nil
	}), &hopper.WorkerConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := w.KeepSchedule(q, "heartbeat", "@every 1s", "ping", nil, nil); err != nil {
		panic(err)
	}
	if err := w.KeepSchedule(q, "digest", "not a spec", "digest", nil, nil); err != nil {
		fmt.Println("refused:", errors.Is(err, hopper.ErrInvalid))
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()

	fmt.Println("ran:", <-ran)
	s, err := q.GetSchedule(ctx, "heartbeat")
	if err != nil {
		panic(err)
	}
	fmt.Println("schedule:", s.Key, s.Spec)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		panic(err)
	}
	<-stopped
	// Output:
	// refused: true
	// ran: ping
	// schedule: heartbeat @every 1s
}
