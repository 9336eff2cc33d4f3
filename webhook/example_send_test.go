package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/webhook"
	"github.com/redis/go-redis/v9"
)

// An app sends an event; a worker delivers it, signed, to the endpoint
// subscribed to "task:*", whose receiver verifies it.
func Example_send() {
	ctx := context.Background()
	mr, err := miniredis.Run() // any Redis; an embedded one here
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	// The receiver, as the customer would run it.
	const secret = "whsec_example"
	got := make(chan string, 1)
	receiver := httptest.NewServer(webhook.Middleware(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %s\n%s", r.Header.Get(webhook.HeaderEvent), r.Header.Get(webhook.HeaderDeliveryID), body)
		fmt.Fprint(w, "thanks")
	})))
	defer receiver.Close()

	// The app: a queue for deliveries, its endpoints, a dispatcher.
	q, err := hopper.NewQueue(rdb, "webhooks", nil)
	if err != nil {
		panic(err)
	}
	store, err := webhook.NewMemoryStore(webhook.Endpoint{
		ID: "crm", URL: receiver.URL + "/hooks", Secret: secret, Events: []string{"task:*"}})
	if err != nil {
		panic(err)
	}
	d, err := webhook.New(q, store, nil)
	if err != nil {
		panic(err)
	}
	defer d.CloseIdleConnections()

	// A worker runs the deliveries (usually in another process).
	results := make(chan []byte, 1)
	w, err := hopper.NewWorker(rdb, "webhooks", d.Handler(), &hopper.WorkerConfig{
		Logger:      slog.New(slog.DiscardHandler),
		OnCompleted: func(_ context.Context, job *hopper.Job) { results <- job.Result },
	})
	if err != nil {
		panic(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Shutdown(ctx); <-stopped }()

	jobs, err := d.Send(ctx, webhook.Event{
		Type:       "task:created",
		ID:         "task-42-created", // stable: sending it again is a no-op
		Payload:    json.RawMessage(`{"task":42,"title":"Write the docs"}`),
		OccurredAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("enqueued", jobs[0].ID)
	fmt.Println(<-got)

	var res webhook.Result
	if err := json.Unmarshal(<-results, &res); err != nil {
		panic(err)
	}
	fmt.Println("delivered:", res.Delivered, res.Status, res.Response)
	// Output:
	// enqueued wh:task-42-created:crm
	// task:created wh:task-42-created:crm
	// {"id":"task-42-created","type":"task:created","occurred_at":"2030-01-02T03:04:05Z","data":{"task":42,"title":"Write the docs"}}
	// delivered: true 200 thanks
}
