// Command webhooks shows webhook delivery with hopper/webhook: an app emits a
// "task:created" event once, and two receivers subscribed to it (one to
// "task:*", one to everything) each get a signed POST, which they verify
// before trusting it. Each delivery is a hopper job with its own retries.
//
//	go run ./examples/webhooks                                   # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/webhooks
//
// The receivers are local HTTP servers inside the program, standing in for
// your customers' endpoints.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
	"github.com/hopperq/hopper/webhook"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example"); err != nil {
		fmt.Fprintln(os.Stderr, "webhooks:", err)
		os.Exit(1)
	}
}

// delivery is what a receiver got, after verifying it.
type delivery struct {
	receiver, event, deliveryID string
	data                        json.RawMessage
}

// startReceiver runs a customer's endpoint: it verifies each request's
// signature with its secret (webhook.Middleware answers 401 otherwise) and
// reports what it got.
func startReceiver(name, secret string, got chan<- delivery) *httptest.Server {
	return httptest.NewServer(webhook.Middleware(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest) // a 4xx: the sender dead-letters, no retry
			return
		}
		got <- delivery{receiver: name, event: body.Type, deliveryID: r.Header.Get(webhook.HeaderDeliveryID), data: body.Data}
		w.WriteHeader(http.StatusNoContent)
	})))
}

func run(ctx context.Context, out io.Writer, redisURL, prefix string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()

	// Two customers' endpoints, each with its own secret.
	got := make(chan delivery, 8)
	crmSecret, auditSecret := webhook.NewSecret(), webhook.NewSecret()
	crm := startReceiver("crm", crmSecret, got)
	defer crm.Close()
	audit := startReceiver("audit", auditSecret, got)
	defer audit.Close()

	// Endpoints live in Redis, so every process (producers and workers)
	// sees the same ones; Put replaces an endpoint by ID.
	store, err := webhook.NewRedisStore(rdb, prefix)
	if err != nil {
		return err
	}
	for _, e := range []webhook.Endpoint{
		{ID: "crm", URL: crm.URL + "/hooks", Secret: crmSecret, Events: []string{"task:*"}},
		{ID: "audit", URL: audit.URL + "/events", Secret: auditSecret, Events: []string{"*"}, Timeout: 5 * time.Second},
	} {
		if err := store.Put(ctx, e); err != nil {
			return err
		}
		fmt.Fprintf(out, "endpoint %-5s subscribes to %v\n", e.ID, e.Events)
	}

	q, err := hopper.NewQueue(rdb, "webhooks", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	d, err := webhook.New(q, store, &webhook.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer d.CloseIdleConnections()

	// A worker delivers; deliveries share the queue with other jobs through
	// a Mux.
	mux := hopper.NewMux()
	mux.Handle(d.JobName(), d.Handler())
	var mu sync.Mutex
	results := map[string]webhook.Result{}
	completed := make(chan struct{}, 8)
	w, err := hopper.NewWorker(rdb, "webhooks", mux, &hopper.WorkerConfig{
		Prefix: prefix, Logger: slog.New(slog.DiscardHandler),
		OnCompleted: func(_ context.Context, job *hopper.Job) {
			var r webhook.Result
			if json.Unmarshal(job.Result, &r) == nil {
				mu.Lock()
				results[r.Endpoint] = r
				mu.Unlock()
			}
			completed <- struct{}{}
		},
	})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Shutdown(sctx)
		<-stopped
	}()

	// The app emits an event. Its ID would normally come from the app's own
	// data (an outbox row), so a retried Send is a no-op; this demo makes a
	// fresh one per run because REDIS_URL may point at a server that keeps
	// the previous run's deliveries.
	ev := webhook.Event{
		Type:    "task:created",
		ID:      "task-1-created-" + rand.Text()[:8],
		Payload: json.RawMessage(`{"task":1,"title":"Ship webhooks"}`),
	}
	jobs, err := d.Send(ctx, ev)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "sent %s %s to %d endpoints\n", ev.Type, ev.ID, len(jobs))

	byReceiver := map[string]delivery{}
	for len(byReceiver) < len(jobs) {
		select {
		case dl := <-got:
			byReceiver[dl.receiver] = dl
		case <-ctx.Done():
			return fmt.Errorf("waiting for the receivers: %w", ctx.Err())
		}
	}
	for range jobs {
		select {
		case <-completed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the deliveries to complete: %w", ctx.Err())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"crm", "audit"} {
		dl := byReceiver[name]
		fmt.Fprintf(out, "%-5s got %s, signature verified, delivery %s, answered %d: %s\n",
			name, dl.event, dl.deliveryID, results[name].Status, dl.data)
	}

	// Sending the same event again enqueues nothing.
	again, err := d.Send(ctx, ev)
	if err != nil {
		return err
	}
	dups := 0
	for _, j := range again {
		if j.Duplicate {
			dups++
		}
	}
	fmt.Fprintf(out, "sent it again: %d of %d deliveries already existed, nothing new enqueued\n", dups, len(again))
	return nil
}
