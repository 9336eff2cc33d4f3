// Command email shows email jobs the way a SaaS app sends them:
//
//   - a verification email: 3 attempts, exponential backoff from 2 s;
//   - a bulk announcement through AddBulk (one atomic round trip): 2 attempts
//     each, fixed 5 s backoff;
//   - a Sender interface, here a fake whose SMTP connection drops now and
//     then, so the run shows retries;
//   - an admin alert hook for sends that end in the dead-letter queue.
//
// With those real delays the run takes about 10 s.
//
//	go run ./examples/email            # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/email
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example", realTiming); err != nil {
		fmt.Fprintln(os.Stderr, "email:", err)
		os.Exit(1)
	}
}

// timing holds the retry delays: the real ones, or short ones for tests.
type timing struct {
	verifyBase time.Duration // exponential backoff base of verification emails
	bulkDelay  time.Duration // fixed backoff of bulk emails
}

var realTiming = timing{verifyBase: 2 * time.Second, bulkDelay: 5 * time.Second}

// Email is the payload of every send job.
type Email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	HTML    string `json:"html"`
}

// Sender delivers one email. Return hopper.Permanent for failures a retry
// cannot fix (an invalid address); anything else is retried.
type Sender interface {
	Send(ctx context.Context, e Email) error
}

// flakySender is the fake: the first `drops` sends to an address fail with a
// transient error; addresses at invalid.example fail permanently.
type flakySender struct {
	mu    sync.Mutex
	drops map[string]int
	sent  []string
}

func (s *flakySender) Send(ctx context.Context, e Email) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasSuffix(e.To, "@invalid.example") {
		return hopper.Permanent(fmt.Errorf("550 no such user %s", e.To))
	}
	if s.drops[e.To] > 0 {
		s.drops[e.To]--
		return errors.New("smtp: connection reset by peer")
	}
	s.sent = append(s.sent, e.To)
	return nil
}

func run(ctx context.Context, out io.Writer, redisURL, prefix string, tm timing) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()
	q, err := hopper.NewQueue(rdb, "emails", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	sender := &flakySender{drops: map[string]int{"ada@example.com": 2, "bob@example.com": 1}}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	// The admin alert: in an app, a Slack message or a page.
	alerts := make(chan string, 4)
	alert := func(ctx context.Context, job *hopper.Job, err error) {
		say("ALERT: %s to %s is dead: %v", job.Name, recipient(job), err)
		alerts <- job.ID
	}

	mux := hopper.NewMux()
	for _, name := range []string{"verify-email", "announcement"} {
		mux.Handle(name, hopper.JSONHandler(func(ctx context.Context, job *hopper.Job, e Email) error {
			return sender.Send(ctx, e)
		}))
	}
	w, err := hopper.NewWorker(rdb, "emails", mux, &hopper.WorkerConfig{
		Prefix: prefix, Logger: slog.New(slog.DiscardHandler), Concurrency: 5,
		OnFailed: func(ctx context.Context, job *hopper.Job, err error) {
			say("retry: %s to %s, attempt %d/%d failed (%v); next try in %s", job.Name, recipient(job),
				job.AttemptsMade, job.MaxAttempts, err, time.Until(job.DueAt).Round(100*time.Millisecond))
		},
		OnCompleted: func(ctx context.Context, job *hopper.Job) {
			say("sent: %s to %s after %d attempt(s)", job.Name, recipient(job), job.AttemptsMade)
		},
		OnDead: alert,
	})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Close(); <-stopped }()

	// A user signs up: the verification email.
	verify, err := q.AddJSON(ctx, "verify-email", Email{To: "ada@example.com", Subject: "Confirm your address",
		HTML: `<a href="https://app.example.com/verify?t=abc">Confirm</a>`},
		&hopper.JobOptions{Attempts: 3, Backoff: hopper.Exponential(tm.verifyBase)})
	if err != nil {
		return err
	}
	// An announcement to every customer, all enqueued or none.
	var bulk []hopper.NewJob
	for _, to := range []string{"bob@example.com", "cy@example.com", "mallory@invalid.example"} {
		job, err := jsonJob("announcement", Email{To: to, Subject: "New: scheduled exports", HTML: "<p>Hi!</p>"},
			&hopper.JobOptions{Attempts: 2, Backoff: hopper.Fixed(tm.bulkDelay)})
		if err != nil {
			return err
		}
		bulk = append(bulk, job)
	}
	added, err := q.AddBulk(ctx, bulk)
	if err != nil {
		return err
	}
	say("enqueued %s and %d announcements", verify.Name, len(added))

	ids := []string{verify.ID}
	for _, j := range added {
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		if _, err := q.Wait(ctx, id); err != nil && !errors.Is(err, hopper.ErrJobDead) {
			return err
		}
	}
	select {
	case <-alerts:
	case <-ctx.Done():
		return ctx.Err()
	}
	sender.mu.Lock()
	say("delivered to %d of 4 recipients", len(sender.sent))
	sender.mu.Unlock()
	return nil
}

func jsonJob(name string, e Email, opts *hopper.JobOptions) (hopper.NewJob, error) {
	b, err := json.Marshal(e)
	return hopper.NewJob{Name: name, Payload: b, Options: opts}, err
}

// recipient reads the To of an email job for the log lines.
func recipient(job *hopper.Job) string {
	var e Email
	if job.Decode(&e) != nil {
		return "?"
	}
	return e.To
}
