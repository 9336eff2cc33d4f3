// Package demo generates live, varied traffic on a few hopper queues, for
// `hopper demo`: a newcomer sees completed, retried, progressing and dead
// jobs and a recurring schedule in the dashboard within seconds.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// Queues are the queues Run creates.
var Queues = []string{"emails", "exports", "webhooks"}

func queues(client redis.UniversalClient, prefix string, log *slog.Logger) (map[string]*hopper.Queue, error) {
	qs := map[string]*hopper.Queue{}
	for _, name := range Queues {
		q, err := hopper.NewQueue(client, name, &hopper.QueueConfig{Prefix: prefix, Logger: log})
		if err != nil {
			return nil, err
		}
		qs[name] = q
	}
	return qs, nil
}

// Seed creates the queues with a first batch of jobs (so that every state
// shows at once) and a schedule that enqueues a cleanup every 10 s.
func Seed(ctx context.Context, client redis.UniversalClient, prefix string) error {
	qs, err := queues(client, prefix, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	if _, err := qs["exports"].UpsertSchedule(ctx, "cleanup", "@every 10s", "cleanup", nil, nil); err != nil {
		return fmt.Errorf("demo: schedule: %w", err)
	}
	for i := range 6 {
		if err := add(ctx, qs, i); err != nil {
			return err
		}
	}
	if _, err := qs["emails"].Add(ctx, "send", []byte(`{"to":"bounce@example.com"}`),
		&hopper.JobOptions{Attempts: 2, Backoff: hopper.Fixed(500 * time.Millisecond)}); err != nil {
		return err
	}
	if _, err := qs["exports"].Add(ctx, "export", []byte(`{"user":42,"format":"csv"}`),
		&hopper.JobOptions{Delay: time.Minute}); err != nil {
		return err
	}
	return nil
}

// Run adds jobs every interval and runs a worker on the demo queues until
// ctx ends; it returns after the worker shut down. Emails mostly succeed,
// fail transiently now and then (retried) and bounce now and then (dead);
// exports report progress and log lines; webhooks are sometimes answered
// 503 and retried after 2 s. Call Seed first.
func Run(ctx context.Context, client redis.UniversalClient, prefix string, interval time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	qs, err := queues(client, prefix, log)
	if err != nil {
		return err
	}
	w, err := hopper.NewMultiWorker(client, map[string]int{"emails": 3, "exports": 1, "webhooks": 2}, handler(),
		&hopper.WorkerConfig{Prefix: prefix, Logger: log, Concurrency: 4, PollInterval: time.Second})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 6; ; i++ {
		select {
		case <-ctx.Done():
			return <-done
		case err := <-done:
			return err
		case <-t.C:
			if err := add(ctx, qs, i); err != nil && ctx.Err() == nil {
				log.Warn("demo: add failed", "err", err)
			}
		}
	}
}

// add enqueues the i-th round of demo jobs.
func add(ctx context.Context, qs map[string]*hopper.Queue, i int) error {
	to := fmt.Sprintf(`{"to":"user%d@example.com"}`, i)
	if i%7 == 3 {
		to = `{"to":"bounce@example.com"}`
	}
	if _, err := qs["emails"].Add(ctx, "send", []byte(to),
		&hopper.JobOptions{Attempts: 3, Backoff: hopper.Fixed(time.Second)}); err != nil {
		return err
	}
	if i%3 == 0 {
		if _, err := qs["exports"].Add(ctx, "export", []byte(fmt.Sprintf(`{"user":%d,"format":"csv"}`, i)), nil); err != nil {
			return err
		}
	}
	_, err := qs["webhooks"].Add(ctx, "deliver", []byte(fmt.Sprintf(`{"event":"task:created","id":%d}`, i)), nil)
	return err
}

// errBounce is the permanent failure of mail to bounce@example.com.
var errBounce = errors.New("550 mailbox unavailable")

func handler() hopper.Handler {
	mux := hopper.NewMux()
	mux.HandleFunc("send", func(ctx context.Context, j *hopper.Job) error {
		var m struct{ To string }
		if err := j.Decode(&m); err != nil {
			return hopper.Permanent(err)
		}
		if m.To == "bounce@example.com" {
			return hopper.Permanent(errBounce)
		}
		if j.AttemptsMade == 0 && rand.IntN(4) == 0 {
			return errors.New("smtp: connection reset")
		}
		return sleep(ctx, time.Duration(50+rand.IntN(200))*time.Millisecond)
	})
	mux.HandleFunc("export", func(ctx context.Context, j *hopper.Job) error {
		for p := 0; p <= 100; p += 25 {
			if err := j.UpdateProgress(ctx, p); err != nil {
				return err
			}
			if err := j.Log(ctx, fmt.Sprintf("wrote %d%% of the rows", p)); err != nil {
				return err
			}
			if err := sleep(ctx, 300*time.Millisecond); err != nil {
				return err
			}
		}
		j.SetResult([]byte(`{"path":"/exports/user.csv","bytes":18342}`))
		return nil
	})
	mux.HandleFunc("deliver", func(ctx context.Context, j *hopper.Job) error {
		if j.AttemptsMade == 0 && rand.IntN(3) == 0 {
			return hopper.FailAfter(2*time.Second, errors.New("receiver answered 503"))
		}
		return sleep(ctx, 20*time.Millisecond)
	})
	mux.HandleFunc("cleanup", func(ctx context.Context, j *hopper.Job) error {
		return j.Log(ctx, "deleted 3 expired sessions")
	})
	return mux
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
