package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	redis.SetLogger(redistest.QuietLogger{})
	goleak.VerifyTestMain(m)
}

// harness is one test's view of one Redis backend, isolated by a unique key
// prefix (never FLUSHDB).
type harness struct {
	t      *testing.T
	name   string
	client redis.UniversalClient
	prefix string
}

// eachBackend runs fn once per configured backend, as the root package's
// tests do (internal/redistest).
func eachBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	redistest.Each(t, "twh", func(t *testing.T, b *redistest.Backend) {
		fn(t, &harness{t: t, name: b.Name, client: b.Client, prefix: b.Prefix})
	})
}

func (h *harness) queue() *hopper.Queue {
	h.t.Helper()
	q, err := hopper.NewQueue(h.client, "webhooks", &hopper.QueueConfig{Prefix: h.prefix})
	require.NoError(h.t, err)
	return q
}

func (h *harness) redisStore() *RedisStore {
	h.t.Helper()
	s, err := NewRedisStore(h.client, h.prefix)
	require.NoError(h.t, err)
	return s
}

// fastConfig is a dispatcher config for tests: 3 attempts, 10ms between
// them, logs discarded.
func fastConfig() *Config {
	return &Config{Attempts: 3, Backoff: hopper.Fixed(10 * time.Millisecond), Logger: slog.New(slog.DiscardHandler)}
}

// dispatcher returns a dispatcher on q whose idle connections are closed
// when the test ends. Create it after the receivers and before the worker,
// so that cleanup stops the worker first, then closes connections, then the
// receivers.
func (h *harness) dispatcher(q *hopper.Queue, store EndpointStore, cfg *Config) *Dispatcher {
	h.t.Helper()
	if cfg == nil {
		cfg = fastConfig()
	}
	d, err := New(q, store, cfg)
	require.NoError(h.t, err)
	h.t.Cleanup(d.CloseIdleConnections)
	return d
}

// worker runs handler on the "webhooks" queue until the test ends.
func (h *harness) worker(handler hopper.Handler) {
	h.t.Helper()
	w, err := hopper.NewWorker(h.client, "webhooks", handler, &hopper.WorkerConfig{
		Prefix: h.prefix, Concurrency: 8, LeaseDuration: 2 * time.Second, PollInterval: time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(h.t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
		select {
		case err := <-done:
			require.NoError(h.t, err)
		case <-ctx.Done():
			h.t.Error("worker did not stop")
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitState waits until job id is in state s and returns it.
func waitState(t *testing.T, q *hopper.Queue, id string, s hopper.State) *hopper.Job {
	t.Helper()
	var last *hopper.Job
	waitFor(t, 15*time.Second, "job "+id+" to be "+string(s), func() bool {
		j, err := q.Job(context.Background(), id)
		if err != nil {
			return false
		}
		last = j
		return j.State == s
	})
	return last
}

// received is one request a receiver got.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is a test webhook endpoint: an httptest server that records
// every request and answers with respond(n, r), n counting from 1.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []received
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

// newReceiver starts a receiver, closed when the test ends. A nil respond
// answers 200 "ok".
func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{at: time.Now(), header: r.Header.Clone(), body: body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		if rc.respond == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		rc.respond(n, w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// status returns a respond func that always answers code with body.
func status(code int, body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// endpoint returns a valid endpoint for tests.
func endpoint(id, url string, events ...string) Endpoint {
	if len(events) == 0 {
		events = []string{"*"}
	}
	return Endpoint{ID: id, URL: url, Secret: "secret-" + id, Events: events}
}

func memStore(t *testing.T, eps ...Endpoint) *MemoryStore {
	t.Helper()
	s, err := NewMemoryStore(eps...)
	require.NoError(t, err)
	return s
}
