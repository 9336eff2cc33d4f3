// Command cron shows recurring schedules: a daily cleanup at midnight
// ("0 0 * * *") and a weekly newsletter on Mondays at 09:00 in New York
// ("0 9 * * 1"), plus a heartbeat every second so you can watch ticks fire
// without waiting a day. Every worker runs the scheduler; each tick enqueues
// exactly one job however many workers run.
//
//	go run ./examples/cron            # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/cron
package main

import (
	"context"
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
		fmt.Fprintln(os.Stderr, "cron:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, redisURL, prefix string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()

	q, err := hopper.NewQueue(rdb, "maintenance", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	// Upsert is idempotent: calling it at every start updates the schedule
	// instead of adding a second one.
	if _, err := q.UpsertSchedule(ctx, "daily-cleanup", "0 0 * * *", "cleanup", nil, nil); err != nil {
		return err
	}
	if _, err := q.UpsertSchedule(ctx, "weekly-newsletter", "0 9 * * 1", "newsletter", []byte(`{"list":"all"}`),
		&hopper.ScheduleOptions{TimeZone: "America/New_York", Job: &hopper.JobOptions{Attempts: 5}}); err != nil {
		return err
	}
	if _, err := q.UpsertSchedule(ctx, "heartbeat", "@every 1s", "heartbeat", nil, nil); err != nil {
		return err
	}

	var mu sync.Mutex
	ran := map[string]int{}
	heartbeats := make(chan struct{}, 16)
	mux := hopper.NewMux()
	for _, name := range []string{"cleanup", "newsletter", "heartbeat"} {
		mux.HandleFunc(name, func(ctx context.Context, job *hopper.Job) error {
			mu.Lock()
			ran[job.Name]++
			mu.Unlock()
			if job.Name == "heartbeat" {
				heartbeats <- struct{}{}
			}
			return nil
		})
	}
	// Two workers, as two processes would be: the ticks still fire once.
	var workers []*hopper.Worker
	for range 2 {
		w, err := hopper.NewWorker(rdb, "maintenance", mux, &hopper.WorkerConfig{
			Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		workers = append(workers, w)
		go func() { _ = w.Run(ctx) }()
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, w := range workers {
			_ = w.Shutdown(sctx)
		}
	}()

	list, err := q.Schedules(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Key != "heartbeat" {
			fmt.Fprintf(out, "schedule %-18s %-12q next run %s\n", s.Key, s.Spec, s.Next.UTC().Format(time.RFC3339))
		}
	}
	// Run the daily and weekly jobs once now, as an operator would to test them.
	for _, key := range []string{"daily-cleanup", "weekly-newsletter"} {
		if _, err := q.TriggerSchedule(ctx, key); err != nil {
			return err
		}
	}
	for i := 0; i < 3; i++ {
		select {
		case <-heartbeats:
		case <-ctx.Done():
			return fmt.Errorf("waiting for heartbeat ticks: %w", ctx.Err())
		}
	}
	for {
		mu.Lock()
		done := ran["cleanup"] == 1 && ran["newsletter"] == 1
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for the triggered jobs: %w", ctx.Err())
		}
	}
	hb, err := q.GetSchedule(ctx, "heartbeat")
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(out, "ran cleanup %d time(s), newsletter %d time(s)\n", ran["cleanup"], ran["newsletter"])
	fmt.Fprintf(out, "heartbeat: %d ticks fired, %d jobs ran (one per tick, with 2 workers)\n", hb.Runs, ran["heartbeat"])
	return nil
}
