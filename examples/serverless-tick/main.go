// Command serverless-tick serves hopper's tick endpoint, the way an app on a
// serverless platform (Vercel, Netlify, Cloud Run) runs background work
// without a long-lived worker: the platform's cron calls
// GET /api/cron/hopper with "Authorization: Bearer $CRON_SECRET" every
// minute, and each call promotes due jobs, fires due schedules, recovers
// stalled jobs and processes ready jobs for a bounded time.
//
//	go run ./examples/serverless-tick          # serves :8080, embedded Redis
//	curl -H "Authorization: Bearer $CRON_SECRET" localhost:8080/api/cron/hopper
//	go run ./examples/serverless-tick -demo    # calls itself, prints, exits
//
// Wiring it to a platform cron, e.g. vercel.json:
//
//	{"crons": [{"path": "/api/cron/hopper", "schedule": "* * * * *"}]}
//
// (Vercel sends CRON_SECRET as the bearer token.) Or a plain crontab:
//
//   - * * * * curl -fsS -H "Authorization: Bearer $CRON_SECRET" https://app.example.com/api/cron/hopper
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
	"github.com/redis/go-redis/v9"
)

func main() {
	demo := flag.Bool("demo", false, "call the endpoint with and without the secret, print the answers, exit")
	addr := flag.String("addr", ":8080", "listen address")
	flag.Parse()
	secret := os.Getenv("CRON_SECRET")
	if secret == "" {
		secret = "dev-secret-change-me-0123456789" // a demo default; set CRON_SECRET in production
	}
	rdb, closeRedis, err := exampleredis.Connect(os.Getenv("REDIS_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "serverless-tick:", err)
		os.Exit(1)
	}
	defer closeRedis()
	app, err := newApp(rdb, "hopper", secret)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serverless-tick:", err)
		os.Exit(1)
	}
	if *demo {
		if err := runDemo(context.Background(), os.Stdout, app, secret); err != nil {
			fmt.Fprintln(os.Stderr, "serverless-tick:", err)
			os.Exit(1)
		}
		return
	}
	fmt.Printf("tick endpoint: curl -H 'Authorization: Bearer %s' http://localhost%s/api/cron/hopper\n", secret, *addr)
	srv := &http.Server{Addr: *addr, Handler: app.mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "serverless-tick:", err)
		os.Exit(1)
	}
}

type app struct {
	mux   *http.ServeMux
	queue *hopper.Queue
}

// newApp wires the app's routes: POST /api/signup enqueues a welcome email
// (the request returns at once), GET|POST /api/cron/hopper is the tick.
func newApp(rdb redis.UniversalClient, prefix, secret string) (*app, error) {
	q, err := hopper.NewQueue(rdb, "emails", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	handler := hopper.NewMux()
	handler.HandleFunc("welcome", func(ctx context.Context, job *hopper.Job) error {
		return nil // send the email here
	})
	handler.HandleFunc("digest", func(ctx context.Context, job *hopper.Job) error {
		return nil // build the daily digest here
	})
	tick, err := hopper.TickHandler([]*hopper.Queue{q}, &hopper.TickConfig{
		Secret:  secret,
		Handler: handler,
		Budget:  20 * time.Second, // below the platform's function limit
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	// A schedule is stored in Redis; the tick fires it when due.
	if _, err := q.UpsertSchedule(context.Background(), "daily-digest", "0 8 * * *", "digest", nil, nil); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/cron/hopper", tick)
	mux.HandleFunc("POST /api/signup", func(w http.ResponseWriter, r *http.Request) {
		job, err := q.AddJSON(r.Context(), "welcome", map[string]string{"email": r.FormValue("email")}, nil)
		if err != nil {
			http.Error(w, `{"error":"could not enqueue"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"jobId": job.ID})
	})
	return &app{mux: mux, queue: q}, nil
}

// runDemo signs up two users, then calls the tick without and with the
// secret, printing status codes and the tick's summary.
func runDemo(ctx context.Context, out io.Writer, a *app, secret string) error {
	srv := httptest.NewServer(a.mux)
	defer srv.Close()
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		resp, err := http.PostForm(srv.URL+"/api/signup", map[string][]string{"email": {email}})
		if err != nil {
			return err
		}
		resp.Body.Close()
		fmt.Fprintf(out, "POST /api/signup %s -> %d\n", email, resp.StatusCode)
	}
	for _, auth := range []string{"", "Bearer " + secret} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/cron/hopper", nil)
		if err != nil {
			return err
		}
		label := "without secret"
		if auth != "" {
			req.Header.Set("Authorization", auth)
			label = "with secret"
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var sum hopper.TickSummary
		err = json.NewDecoder(resp.Body).Decode(&sum)
		resp.Body.Close()
		fmt.Fprintf(out, "GET /api/cron/hopper %s -> %d", label, resp.StatusCode)
		if resp.StatusCode == http.StatusOK && err == nil {
			fmt.Fprintf(out, " completed=%d failed=%d dead=%d", sum.Completed, sum.Failed, sum.Dead)
		}
		fmt.Fprintln(out)
	}
	c, err := a.queue.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "queue emails: %d waiting, %d completed\n", c.Waiting, c.Completed)
	return nil
}
