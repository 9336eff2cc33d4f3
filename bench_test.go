package hopper_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// Go benchmarks of the hot paths, on miniredis by default and on a real
// server when HOPPER_TEST_REDIS_ADDR is set:
//
//	go test -run xxx -bench . -benchtime 2000x ./
//	HOPPER_TEST_REDIS_ADDR=127.0.0.1:6379 go test -run xxx -bench . -benchtime 20000x ./
//
// The comparison with asynq lives in the bench module (bench/README.md).

// benchPayload is a 100-byte JSON payload, as in the bench module.
var benchPayload = func() []byte {
	p := `{"ts":1700000000000000000,"seq":42,"pad":"`
	return []byte(p + strings.Repeat("x", 100-2-len(p)) + `"}`)
}()

// benchEnv is one benchmark run's client and key prefix.
type benchEnv struct {
	client *redis.Client
	prefix string
	trips  *atomic.Int64 // round trips sent through client
}

// newBenchEnv connects to the configured backend with a fresh key prefix
// and removes the prefix' keys (real server) and the client when b ends.
func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	e := &benchEnv{prefix: "bench" + hex.EncodeToString(rnd[:]), trips: new(atomic.Int64)}
	addr := os.Getenv("HOPPER_TEST_REDIS_ADDR")
	onServer := addr != ""
	if !onServer {
		addr = miniredis.RunT(b).Addr()
	}
	e.client = redis.NewClient(&redis.Options{Addr: addr})
	e.client.AddHook(tripHook{e.trips})
	b.Cleanup(func() {
		if onServer {
			ctx := context.Background()
			iter := e.client.Scan(ctx, 0, e.prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				e.client.Del(ctx, iter.Val())
			}
		}
		_ = e.client.Close()
	})
	return e
}

func (e *benchEnv) queue(b *testing.B) *hopper.Queue {
	b.Helper()
	q, err := hopper.NewQueue(e.client, "bench", &hopper.QueueConfig{Prefix: e.prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return q
}

func (e *benchEnv) reportTrips(b *testing.B, before int64) {
	b.ReportMetric(float64(e.trips.Load()-before)/float64(b.N), "trips/job")
}

// tripHook counts round trips: a command sent alone or a pipeline.
type tripHook struct{ n *atomic.Int64 }

func (tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// addBench sets up an Add benchmark: a queue whose add script is loaded,
// allocations reported, and the round-trip count before the timed part.
func addBench(b *testing.B) (*benchEnv, *hopper.Queue, int64) {
	e := newBenchEnv(b)
	q := e.queue(b)
	if _, err := q.Add(context.Background(), "bench", benchPayload, nil); err != nil { // load the script
		b.Fatal(err)
	}
	b.ReportAllocs()
	return e, q, e.trips.Load()
}

// BenchmarkAdd measures Queue.Add, one job per op.
func BenchmarkAdd(b *testing.B) {
	e, q, before := addBench(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := q.Add(ctx, "bench", benchPayload, nil); err != nil {
			b.Fatal(err)
		}
	}
	e.reportTrips(b, before)
}

// BenchmarkAddBulk measures Queue.AddBulk in chunks of 100; one op is one
// job.
func BenchmarkAddBulk(b *testing.B) {
	const chunk = 100
	e := newBenchEnv(b)
	q := e.queue(b)
	ctx := context.Background()
	jobs := make([]hopper.NewJob, chunk)
	for i := range jobs {
		jobs[i] = hopper.NewJob{Name: "bench", Payload: benchPayload}
	}
	if _, err := q.AddBulk(ctx, jobs[:1]); err != nil { // load the script
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := e.trips.Load()
	b.ResetTimer()
	for i := 0; i < b.N; i += chunk {
		if _, err := q.AddBulk(ctx, jobs[:min(chunk, b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	e.reportTrips(b, before)
}

// BenchmarkProcess pre-enqueues b.N no-op jobs, then runs one worker
// (concurrency 10) until every completion is recorded in Redis. One op is
// one processed job.
func BenchmarkProcess(b *testing.B) {
	e := newBenchEnv(b)
	q := e.queue(b)
	ctx := context.Background()
	jobs := make([]hopper.NewJob, 0, 1000)
	for i := 0; i < b.N; i += cap(jobs) {
		jobs = jobs[:0]
		for range min(cap(jobs), b.N-i) {
			jobs = append(jobs, hopper.NewJob{Name: "bench", Payload: benchPayload})
		}
		if _, err := q.AddBulk(ctx, jobs); err != nil {
			b.Fatal(err)
		}
	}
	var completed atomic.Int64
	all := make(chan struct{})
	w, err := hopper.NewWorker(e.client, "bench", hopper.HandlerFunc(func(context.Context, *hopper.Job) error { return nil }),
		&hopper.WorkerConfig{Concurrency: 10, Prefix: e.prefix, Logger: slog.New(slog.DiscardHandler),
			// OnCompleted runs after the completion is written to Redis.
			OnCompleted: func(context.Context, *hopper.Job) {
				if completed.Add(1) == int64(b.N) {
					close(all)
				}
			}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := e.trips.Load()
	b.ResetTimer()
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(5*time.Minute + time.Duration(b.N)*time.Millisecond):
		b.Errorf("timed out: %d of %d jobs completed", completed.Load(), b.N)
	}
	b.StopTimer()
	e.reportTrips(b, before)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		b.Fatal(err)
	}
	if err := <-runErr; err != nil {
		b.Fatal(err)
	}
	c, err := q.Counts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if c.Waiting+c.Active != 0 {
		b.Fatalf("jobs left after the run: %+v", c)
	}
}

// BenchmarkAddParallel measures Queue.Add from 8 goroutines sharing one
// Queue (concurrent adds are coalesced); one op is one job.
func BenchmarkAddParallel(b *testing.B) {
	e, q, before := addBench(b)
	ctx := context.Background()
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Add(ctx, "bench", benchPayload, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	e.reportTrips(b, before)
}
