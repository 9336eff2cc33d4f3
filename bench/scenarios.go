package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// scenario is one benchmark, defined once for every system.
type scenario struct {
	name string
	// count is the default number of jobs (0: the scenario is time-based);
	// short is the count in -short mode.
	count, short int
	opts         sysOptions
	run          func(ctx context.Context, e *env, s system, n int) (*result, error)
}

var scenarios = []scenario{
	{name: "enqueue-seq", count: 100_000, short: 2000, run: enqueueSeq},
	{name: "enqueue-par", count: 100_000, short: 2000, run: enqueuePar},
	{name: "enqueue-bulk", count: 100_000, short: 2000, run: enqueueBulk},
	{name: "process-c10", count: 100_000, short: 2000, run: process(10)},
	{name: "process-c50", count: 100_000, short: 2000, run: process(50)},
	{name: "latency", count: 10_000, short: 1000, run: latency},
	{name: "delayed", count: 20_000, short: 2000, run: delayed},
	{name: "retry", count: 10_000, short: 2000, run: retry, opts: sysOptions{retryAtOnce: true}},
	{name: "memory", count: 100_000, short: 2000, run: memory},
	{name: "idle", run: idle},
}

const (
	payloadSize  = 100
	parProducers = 8    // enqueue-par
	latencyRate  = 1000 // jobs/s, latency
	latencyConc  = 10   // worker concurrency, latency
	scheduleConc = 50   // worker concurrency, delayed and retry
	idleConc     = 10   // worker concurrency, idle
)

// payload returns a 100-byte JSON object carrying ts (Unix ns) and seq.
func payload(ts int64, seq int) []byte {
	b := make([]byte, 0, payloadSize)
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"pad":"`...)
	for len(b) < payloadSize-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// payloadTS returns the ts field of a payload made by payload.
func payloadTS(p []byte) (int64, error) {
	const pre = `{"ts":`
	if len(p) < len(pre) || string(p[:len(pre)]) != pre {
		return 0, errors.New("payload without ts")
	}
	var ts int64
	for _, c := range p[len(pre):] {
		if c < '0' || c > '9' {
			break
		}
		ts = ts*10 + int64(c-'0')
	}
	return ts, nil
}

func nowPayload(i int) []byte { return payload(time.Now().UnixNano(), i) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// waitDone waits until done is closed, or fails after timeout with what
// progress reports.
func waitDone(ctx context.Context, done <-chan struct{}, timeout time.Duration, progress func() string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("timed out after %s: %s", timeout, progress())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// confirm polls Redis until the system reports no unfinished job: the last
// acknowledgement has reached Redis.
func confirm(ctx context.Context, s system, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.Unfinished(ctx)
		if err != nil {
			return fmt.Errorf("reading counts: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d jobs still unfinished in Redis after %s", n, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitTimeout scales the patience of a scenario with its job count.
func waitTimeout(n int) time.Duration { return 2*time.Minute + time.Duration(n)*5*time.Millisecond }

// counter counts handler runs and closes done at the n-th.
type counter struct {
	n    int64
	c    atomic.Int64
	done chan struct{}
}

func newCounter(n int) *counter { return &counter{n: int64(n), done: make(chan struct{})} }

func (c *counter) inc() {
	if c.c.Add(1) == c.n {
		close(c.done)
	}
}

func (c *counter) progress() string { return fmt.Sprintf("%d of %d jobs ran", c.c.Load(), c.n) }

func throughput(r *result, n int, d time.Duration) {
	r.Seconds = ptr(d.Seconds())
	r.JobsPerS = ptr(float64(n) / d.Seconds())
}

// ---- enqueue ----

func enqueueSeq(ctx context.Context, e *env, s system, n int) (*result, error) {
	return enqueue(ctx, e, s, n, func() error {
		for i := range n {
			if err := s.Add(ctx, nowPayload(i), time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
}

func enqueuePar(ctx context.Context, e *env, s system, n int) (*result, error) {
	return enqueue(ctx, e, s, n, func() error {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, parProducers)
		for g := range parProducers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := s.Add(ctx, nowPayload(i), time.Time{}); err != nil {
						errs[g] = err
						return
					}
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}

func enqueueBulk(ctx context.Context, e *env, s system, n int) (*result, error) {
	return enqueue(ctx, e, s, n, func() error { return s.AddMany(ctx, n, nowPayload, time.Time{}) })
}

func enqueue(ctx context.Context, e *env, s system, n int, add func() error) (*result, error) {
	m, err := e.begin(ctx, s)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := add(); err != nil {
		return nil, err
	}
	d := time.Since(t0)
	w, err := m.end(ctx)
	if err != nil {
		return nil, err
	}
	r := &result{}
	throughput(r, n, d)
	w.perJob(r, n)
	return r, nil
}

// ---- process ----

// process pre-enqueues n no-op jobs, then starts one worker at concurrency
// and times it until the last acknowledgement is in Redis.
func process(concurrency int) func(ctx context.Context, e *env, s system, n int) (*result, error) {
	return func(ctx context.Context, e *env, s system, n int) (*result, error) {
		if err := s.AddMany(ctx, n, nowPayload, time.Time{}); err != nil {
			return nil, fmt.Errorf("pre-enqueue: %w", err)
		}
		cnt := newCounter(n)
		m, err := e.begin(ctx, s)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := s.StartWorker(concurrency, func(context.Context, []byte, int) error { cnt.inc(); return nil }); err != nil {
			return nil, err
		}
		if err := waitDone(ctx, cnt.done, waitTimeout(n), cnt.progress); err != nil {
			return nil, err
		}
		if err := confirm(ctx, s, time.Minute); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		w, err := m.end(ctx)
		if err != nil {
			return nil, err
		}
		r := &result{}
		throughput(r, n, d)
		w.perJob(r, n)
		return r, s.StopWorker()
	}
}

// ---- latency ----

// latency adds n jobs at latencyRate from one producer to a running worker
// and measures enqueue -> handler start from the time in the payload.
func latency(ctx context.Context, e *env, s system, n int) (*result, error) {
	lat := make([]time.Duration, n)
	var idx atomic.Int64
	cnt := newCounter(n)
	var bad atomic.Int64
	fn := func(_ context.Context, p []byte, _ int) error {
		now := time.Now().UnixNano()
		ts, err := payloadTS(p)
		if err != nil {
			bad.Add(1)
		}
		if i := idx.Add(1) - 1; i < int64(n) {
			lat[i] = time.Duration(now - ts)
		}
		cnt.inc()
		return nil
	}
	if err := s.StartWorker(latencyConc, fn); err != nil {
		return nil, err
	}
	time.Sleep(e.settle()) // let the worker reach its idle state
	m, err := e.begin(ctx, s)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	interval := time.Second / latencyRate
	for i := range n {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if err := s.Add(ctx, nowPayload(i), time.Time{}); err != nil {
			return nil, err
		}
	}
	produced := time.Since(t0)
	if err := waitDone(ctx, cnt.done, waitTimeout(n), cnt.progress); err != nil {
		return nil, err
	}
	w, err := m.end(ctx)
	if err != nil {
		return nil, err
	}
	if bad.Load() > 0 {
		return nil, fmt.Errorf("%d payloads without a timestamp", bad.Load())
	}
	slices.Sort(lat)
	r := &result{Seconds: ptr(produced.Seconds())}
	r.P50Ms = ptr(ms(quantile(lat, 0.50)))
	r.P99Ms = ptr(ms(quantile(lat, 0.99)))
	r.MaxMs = ptr(ms(lat[len(lat)-1]))
	w.perJob(r, n)
	return r, s.StopWorker()
}

// quantile returns the q-quantile (nearest rank) of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ---- delayed ----

// delayed adds n jobs due at one whole second a few seconds ahead to a running
// worker, and measures due -> first start and due -> last start.
func delayed(ctx context.Context, e *env, s system, n int) (*result, error) {
	var first, last atomic.Int64
	first.Store(math.MaxInt64)
	cnt := newCounter(n)
	fn := func(context.Context, []byte, int) error {
		now := time.Now().UnixNano()
		for {
			f := first.Load()
			if now >= f || first.CompareAndSwap(f, now) {
				break
			}
		}
		for {
			l := last.Load()
			if now <= l || last.CompareAndSwap(l, now) {
				break
			}
		}
		cnt.inc()
		return nil
	}
	if err := s.StartWorker(scheduleConc, fn); err != nil {
		return nil, err
	}
	time.Sleep(e.settle())
	ahead := 3 * time.Second
	if e.cfg.short {
		ahead = time.Second
	}
	due := time.Now().Add(ahead).Truncate(time.Second).Add(time.Second)
	m, err := e.begin(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := s.AddMany(ctx, n, nowPayload, due); err != nil {
		return nil, err
	}
	if late := time.Since(due); late >= 0 {
		return nil, fmt.Errorf("adding %d delayed jobs ended %s after their due time: use a smaller -n", n, late)
	}
	if err := waitDone(ctx, cnt.done, time.Until(due)+waitTimeout(n), cnt.progress); err != nil {
		return nil, err
	}
	if err := confirm(ctx, s, time.Minute); err != nil {
		return nil, err
	}
	w, err := m.end(ctx)
	if err != nil {
		return nil, err
	}
	r := &result{}
	r.DueToFirstMs = ptr(ms(time.Duration(first.Load() - due.UnixNano())))
	r.DueToLastMs = ptr(ms(time.Duration(last.Load() - due.UnixNano())))
	w.perJob(r, n)
	return r, s.StopWorker()
}

// ---- retry ----

var errFirstAttempt = errors.New("bench: first attempt fails")

// retry pre-enqueues n jobs that fail their first attempt and succeed on the
// second (no backoff), then times a worker until all have succeeded.
func retry(ctx context.Context, e *env, s system, n int) (*result, error) {
	if err := s.AddMany(ctx, n, nowPayload, time.Time{}); err != nil {
		return nil, fmt.Errorf("pre-enqueue: %w", err)
	}
	cnt := newCounter(n)
	fn := func(_ context.Context, _ []byte, attempt int) error {
		if attempt == 0 {
			return errFirstAttempt
		}
		cnt.inc()
		return nil
	}
	m, err := e.begin(ctx, s)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := s.StartWorker(scheduleConc, fn); err != nil {
		return nil, err
	}
	if err := waitDone(ctx, cnt.done, waitTimeout(n), cnt.progress); err != nil {
		return nil, err
	}
	if err := confirm(ctx, s, time.Minute); err != nil {
		return nil, err
	}
	d := time.Since(t0)
	w, err := m.end(ctx)
	if err != nil {
		return nil, err
	}
	r := &result{}
	throughput(r, n, d)
	w.perJob(r, n)
	return r, s.StopWorker()
}

// ---- memory ----

// memory adds n waiting jobs and reports Redis' used_memory growth per job.
func memory(ctx context.Context, e *env, s system, n int) (*result, error) {
	time.Sleep(e.settle() / 5)
	before, err := readStats(ctx, e.admin)
	if err != nil {
		return nil, err
	}
	if err := s.AddMany(ctx, n, nowPayload, time.Time{}); err != nil {
		return nil, err
	}
	time.Sleep(e.settle() / 5)
	after, err := readStats(ctx, e.admin)
	if err != nil {
		return nil, err
	}
	return &result{BytesPerJob: ptr(float64(after.usedMemory-before.usedMemory) / float64(n))}, nil
}

// ---- idle ----

// idle runs one worker on an empty queue and counts what it costs Redis.
func idle(ctx context.Context, e *env, s system, _ int) (*result, error) {
	if err := s.StartWorker(idleConc, func(context.Context, []byte, int) error { return nil }); err != nil {
		return nil, err
	}
	time.Sleep(e.settle())
	m, err := e.begin(ctx, s)
	if err != nil {
		return nil, err
	}
	span := 10 * time.Second
	if e.cfg.short {
		span = 2 * time.Second
	}
	time.Sleep(span)
	w, err := m.end(ctx)
	if err != nil {
		return nil, err
	}
	sec := w.elapsed.Seconds()
	r := &result{Seconds: ptr(sec)}
	r.IdleCmdsPerS = ptr(float64(w.calls) / sec)
	r.IdleRoundTripsPerS = ptr(float64(w.trips) / sec)
	r.RedisCPUUsPerS = ptr(float64(w.redisCPU.Microseconds()) / sec)
	return r, s.StopWorker()
}
