package hopper

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs dial failures of the outage tests to stderr; keep the
	// test output readable.
	redis.SetLogger(redistest.QuietLogger{})
	goleak.VerifyTestMain(m)
}

// harness is one test's view of one Redis backend, isolated by a unique key
// prefix (never FLUSHDB).
type harness struct {
	t      *testing.T
	name   string
	client redis.UniversalClient
	mr     *miniredis.Miniredis // nil on a real server
	prefix string
	cmds   *atomic.Int64 // commands sent through client (see countHook)
}

// eachBackend runs fn once per configured backend (internal/redistest):
// miniredis always, a real Redis server when HOPPER_TEST_REDIS_ADDR is set,
// and a Redis Cluster when HOPPER_TEST_REDIS_CLUSTER is set.
func eachBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	t.Helper()
	redistest.Each(t, "t", func(t *testing.T, b *redistest.Backend) {
		h := &harness{t: t, name: b.Name, client: b.Client, mr: b.Miniredis, prefix: b.Prefix, cmds: new(atomic.Int64)}
		b.Client.AddHook(countHook{h.cmds})
		fn(t, h)
	})
}

func (h *harness) queue(name string, cfg *QueueConfig) *Queue {
	h.t.Helper()
	c := QueueConfig{}
	if cfg != nil {
		c = *cfg
	}
	c.Prefix = h.prefix
	q, err := NewQueue(h.client, name, &c)
	require.NoError(h.t, err)
	return q
}

// fastWorkerConfig is a worker config with short leases for tests.
func fastWorkerConfig() *WorkerConfig {
	return &WorkerConfig{Concurrency: 4, LeaseDuration: 2 * time.Second, PollInterval: time.Second}
}

func (h *harness) newWorker(queue string, handler Handler, cfg *WorkerConfig) *Worker {
	h.t.Helper()
	c := *fastWorkerConfig()
	if cfg != nil {
		c = *cfg
	}
	c.Prefix = h.prefix
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := NewWorker(h.client, queue, handler, &c)
	require.NoError(h.t, err)
	return w
}

// start runs w in the background and stops it (gracefully, bounded) when the
// test ends; the test fails if Run returns an error.
func (h *harness) start(w *Worker) *Worker {
	h.t.Helper()
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
	return w
}

func (h *harness) worker(queue string, handler Handler, cfg *WorkerConfig) *Worker {
	h.t.Helper()
	return h.start(h.newWorker(queue, handler, cfg))
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
func waitState(t *testing.T, q *Queue, id string, s State, timeout time.Duration) *Job {
	t.Helper()
	var last *Job
	waitFor(t, timeout, "job "+id+" to be "+string(s), func() bool {
		j, err := q.Job(context.Background(), id)
		if err != nil {
			return false
		}
		last = j
		return j.State == s
	})
	return last
}

// countHook counts commands (pipelines count each command) sent through a
// client.
type countHook struct{ n *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// recorder is a handler that records the jobs it ran.
type recorder struct {
	mu   sync.Mutex
	runs map[string]int
	fn   func(ctx context.Context, job *Job) error
}

func newRecorder(fn func(ctx context.Context, job *Job) error) *recorder {
	return &recorder{runs: map[string]int{}, fn: fn}
}

func (r *recorder) ProcessJob(ctx context.Context, job *Job) error {
	r.mu.Lock()
	r.runs[job.ID]++
	r.mu.Unlock()
	if r.fn == nil {
		return nil
	}
	return r.fn(ctx, job)
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[id]
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.runs {
		n += c
	}
	return n
}
