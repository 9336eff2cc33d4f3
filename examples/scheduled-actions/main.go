// Command scheduled-actions is the Go form of a SaaS boilerplate's
// "Scheduled Actions" module:
//
//	scheduleAction('webhook:send', {url, event}, {teamId})
//	scheduleRecurringAction('billing:check-renewals', {}, 'daily')
//
// become Queue.ScheduleAction (a one-off action, here due in a moment, with
// the team ID as job metadata) and Queue.ScheduleRecurringAction (a named
// recurring action; calling it at every deploy updates it, never duplicates
// it). One Mux routes the actions by name.
//
//	go run ./examples/scheduled-actions            # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/scheduled-actions
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example"); err != nil {
		fmt.Fprintln(os.Stderr, "scheduled-actions:", err)
		os.Exit(1)
	}
}

// webhookSend is the payload of the webhook:send action.
type webhookSend struct {
	URL   string `json:"url"`
	Event string `json:"event"`
}

func run(ctx context.Context, out io.Writer, redisURL, prefix string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()
	q, err := hopper.NewQueue(rdb, "actions", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}

	// scheduleRecurringAction('billing:check-renewals', {}, 'daily')
	s, err := q.ScheduleRecurringAction(ctx, "billing:check-renewals", []byte(`{}`), "daily", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "recurring action %s: %q, next run %s\n", s.Key, s.Spec, s.Next.UTC().Format(time.RFC3339))

	// scheduleAction('webhook:send', {url, event}, {teamId}), due in 300 ms.
	payload := []byte(`{"url":"https://hooks.example.com/t/42","event":"invoice.paid"}`)
	action, err := q.ScheduleAction(ctx, "webhook:send", payload, &hopper.JobOptions{
		Delay: 300 * time.Millisecond, Metadata: map[string]string{"teamId": "team_42"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "scheduled action %s (%s), state %s\n", action.Name, action.ID, action.State)

	done := make(chan string, 2)
	mux := hopper.NewMux()
	mux.Handle("webhook:send", hopper.JSONHandler(func(ctx context.Context, job *hopper.Job, p webhookSend) error {
		// A real handler POSTs p.Event to p.URL (see the webhook package).
		done <- fmt.Sprintf("webhook:send for team %s: %s -> %s", job.Metadata["teamId"], p.Event, p.URL)
		return nil
	}))
	mux.HandleFunc("billing:check-renewals", func(ctx context.Context, job *hopper.Job) error {
		done <- "billing:check-renewals ran (schedule " + job.Schedule + ")"
		return nil
	})
	w, err := hopper.NewWorker(rdb, "actions", mux, &hopper.WorkerConfig{Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Close(); <-stopped }()

	// The daily action runs at midnight; run it once now, as an operator would.
	if _, err := q.TriggerSchedule(ctx, "billing:check-renewals"); err != nil {
		return err
	}
	for range 2 {
		select {
		case line := <-done:
			fmt.Fprintln(out, line)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
