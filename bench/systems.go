package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// jobFunc is a scenario's handler, the same for every system: payload is the
// job's payload, attempt the number of attempts made before this one (0 on
// the first run).
type jobFunc func(ctx context.Context, payload []byte, attempt int) error

// system is one job queue under test, set up fresh for one run. Producer and
// worker each get their own go-redis client, both counted by one round-trip
// hook.
type system interface {
	// Add enqueues one job, due at once (at zero) or at at.
	Add(ctx context.Context, payload []byte, at time.Time) error
	// AddMany enqueues n jobs (payload gen(i)) as fast as the system's API
	// allows: hopper with AddBulk in chunks of bulkChunk from one goroutine;
	// asynq, which has no bulk API, with manyWorkers goroutines of Enqueue.
	AddMany(ctx context.Context, n int, gen func(i int) []byte, at time.Time) error
	// StartWorker starts one worker (server) running fn at concurrency.
	StartWorker(concurrency int, fn jobFunc) error
	// StopWorker shuts the worker down gracefully.
	StopWorker() error
	// Unfinished returns the jobs in Redis that are not done yet (waiting,
	// active, delayed or awaiting a retry), read through the system's admin
	// API on the harness' client.
	Unfinished(ctx context.Context) (int64, error)
	// RoundTrips returns the round trips sent by the system's clients so far.
	RoundTrips() int64
	// Close stops the worker if any and closes the system's clients.
	Close() error
}

const (
	queueName   = "bench"
	jobName     = "bench"
	bulkChunk   = 1000
	manyWorkers = 32
)

// sysOptions are the per-scenario settings of a system.
type sysOptions struct {
	// retryAtOnce makes failed attempts retry with no backoff.
	retryAtOnce bool
}

func newSystem(name string, e *env, o sysOptions) (system, error) {
	switch name {
	case "hopper":
		return newHopper(e, o)
	case "hopper-noevents":
		s, err := newHopper(e, o)
		if err != nil {
			return nil, err
		}
		if err := s.admin.SetEventsMaxLen(context.Background(), 0); err != nil {
			_ = s.Close()
			return nil, err
		}
		return s, nil
	case "asynq":
		return newAsynq(e, o)
	}
	return nil, fmt.Errorf("unknown system %q", name)
}

// clients returns the producer and worker clients of one system, both
// counted by one hook.
func (e *env) clients() (prod, work *redis.Client, h rtHook) {
	h = newRTHook()
	prod = redis.NewClient(&redis.Options{Addr: e.cfg.addr, DB: e.cfg.db})
	work = redis.NewClient(&redis.Options{Addr: e.cfg.addr, DB: e.cfg.db})
	prod.AddHook(h)
	work.AddHook(h)
	return prod, work, h
}

// ---- hopper ----

type hopperSys struct {
	prod, work *redis.Client
	hook       rtHook
	prefix     string
	q, admin   *hopper.Queue
	w          *hopper.Worker
	runErr     chan error
	log        *slog.Logger
	opts       sysOptions
}

func newHopper(e *env, o sysOptions) (*hopperSys, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	s := &hopperSys{prefix: "hb" + hex.EncodeToString(b[:]), log: slog.New(slog.DiscardHandler), opts: o}
	s.prod, s.work, s.hook = e.clients()
	qc := &hopper.QueueConfig{Prefix: s.prefix, Logger: s.log}
	var err error
	if s.q, err = hopper.NewQueue(s.prod, queueName, qc); err != nil {
		return nil, err
	}
	if s.admin, err = hopper.NewQueue(e.admin, queueName, qc); err != nil {
		return nil, err
	}
	return s, nil
}

func hopperOpts(at time.Time) *hopper.JobOptions {
	if at.IsZero() {
		return nil
	}
	return &hopper.JobOptions{RunAt: at}
}

func (s *hopperSys) Add(ctx context.Context, payload []byte, at time.Time) error {
	_, err := s.q.Add(ctx, jobName, payload, hopperOpts(at))
	return err
}

func (s *hopperSys) AddMany(ctx context.Context, n int, gen func(i int) []byte, at time.Time) error {
	opts := hopperOpts(at)
	jobs := make([]hopper.NewJob, 0, bulkChunk)
	for i := 0; i < n; i += bulkChunk {
		jobs = jobs[:0]
		for k := i; k < min(i+bulkChunk, n); k++ {
			jobs = append(jobs, hopper.NewJob{Name: jobName, Payload: gen(k), Options: opts})
		}
		if _, err := s.q.AddBulk(ctx, jobs); err != nil {
			return err
		}
	}
	return nil
}

func (s *hopperSys) StartWorker(concurrency int, fn jobFunc) error {
	h := hopper.HandlerFunc(func(ctx context.Context, job *hopper.Job) error {
		return fn(ctx, job.Payload, job.AttemptsMade)
	})
	cfg := &hopper.WorkerConfig{Concurrency: concurrency, Prefix: s.prefix, Logger: s.log}
	if s.opts.retryAtOnce {
		// The worker-wide default, like asynq's Config.RetryDelayFunc below.
		cfg.DefaultBackoff = func(int, error) time.Duration { return 0 }
	}
	w, err := hopper.NewWorker(s.work, queueName, h, cfg)
	if err != nil {
		return err
	}
	s.w, s.runErr = w, make(chan error, 1)
	go func() { s.runErr <- w.Run(context.Background()) }()
	return nil
}

func (s *hopperSys) StopWorker() error {
	if s.w == nil {
		return nil
	}
	w := s.w
	s.w = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		return fmt.Errorf("hopper worker shutdown: %w", err)
	}
	select {
	case err := <-s.runErr:
		return err
	case <-ctx.Done():
		return errors.New("hopper worker: Run did not return after Shutdown")
	}
}

func (s *hopperSys) Unfinished(ctx context.Context) (int64, error) {
	c, err := s.admin.Counts(ctx)
	if err != nil {
		return 0, err
	}
	return c.Waiting + c.Active + c.Delayed + c.Failed, nil
}

func (s *hopperSys) RoundTrips() int64 { return s.hook.trips.Load() }

func (s *hopperSys) Close() error {
	err := s.StopWorker()
	return errors.Join(err, s.prod.Close(), s.work.Close())
}

// ---- asynq ----

// asynq (since v0.25) accepts a caller's go-redis client, so its round trips
// are counted by the same hook as hopper's.
type asynqSys struct {
	prod, work *redis.Client
	hook       rtHook
	client     *asynq.Client
	insp       *asynq.Inspector
	srv        *asynq.Server
	opts       sysOptions
}

func newAsynq(e *env, o sysOptions) (*asynqSys, error) {
	s := &asynqSys{opts: o}
	s.prod, s.work, s.hook = e.clients()
	s.client = asynq.NewClientFromRedisClient(s.prod)
	s.insp = asynq.NewInspectorFromRedisClient(e.admin)
	return s, nil
}

func asynqOpts(at time.Time) []asynq.Option {
	if at.IsZero() {
		return []asynq.Option{asynq.Queue(queueName)}
	}
	return []asynq.Option{asynq.Queue(queueName), asynq.ProcessAt(at)}
}

func (s *asynqSys) Add(ctx context.Context, payload []byte, at time.Time) error {
	_, err := s.client.EnqueueContext(ctx, asynq.NewTask(jobName, payload), asynqOpts(at)...)
	return err
}

func (s *asynqSys) AddMany(ctx context.Context, n int, gen func(i int) []byte, at time.Time) error {
	opts := asynqOpts(at)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, manyWorkers)
	for g := range manyWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := s.client.EnqueueContext(ctx, asynq.NewTask(jobName, gen(i)), opts...); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *asynqSys) StartWorker(concurrency int, fn jobFunc) error {
	cfg := asynq.Config{
		Concurrency: concurrency,
		Queues:      map[string]int{queueName: 1},
		Logger:      nopLogger{},
		LogLevel:    asynq.FatalLevel,
	}
	if s.opts.retryAtOnce {
		cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return 0 }
	}
	srv := asynq.NewServerFromRedisClient(s.work, cfg)
	h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		n, _ := asynq.GetRetryCount(ctx)
		return fn(ctx, t.Payload(), n)
	})
	if err := srv.Start(h); err != nil {
		return err
	}
	s.srv = srv
	return nil
}

func (s *asynqSys) StopWorker() error {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
	return nil
}

func (s *asynqSys) Unfinished(ctx context.Context) (int64, error) {
	qi, err := s.insp.GetQueueInfo(queueName)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return int64(qi.Pending + qi.Active + qi.Scheduled + qi.Retry + qi.Aggregating), nil
}

func (s *asynqSys) RoundTrips() int64 { return s.hook.trips.Load() }

func (s *asynqSys) Close() error {
	err := s.StopWorker()
	// The asynq Client and Inspector share our clients: closing them through
	// asynq is refused; close the clients themselves.
	return errors.Join(err, s.prod.Close(), s.work.Close())
}

// nopLogger silences asynq.
type nopLogger struct{}

func (nopLogger) Debug(...any) {}
func (nopLogger) Info(...any)  {}
func (nopLogger) Warn(...any)  {}
func (nopLogger) Error(...any) {}
func (nopLogger) Fatal(...any) {}
