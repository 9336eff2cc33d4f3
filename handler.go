package hopper

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// Handler processes jobs. ProcessJob's return value decides the job's fate:
//
//   - nil: the job is completed (with the result set by job.SetResult);
//   - an error: the attempt failed; the job is retried after its backoff
//     until its attempts are spent, then dead-lettered;
//   - Permanent(err): dead-lettered at once;
//   - RetryAfter(d, err): run again after d without spending an attempt.
//
// A panic is recovered and treated as a failed attempt, with its stack trace
// recorded. ctx ends when the job's timeout elapses (cause ErrJobTimeout),
// when its lease is lost (ErrLeaseLost) or when the worker's shutdown budget
// runs out (ErrWorkerShutdown); a handler should then return promptly. It
// cannot complete the job any more: its result is discarded. ProcessJob is
// called from many goroutines at once.
type Handler interface {
	ProcessJob(ctx context.Context, job *Job) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *Job) error

// ProcessJob calls f(ctx, job).
func (f HandlerFunc) ProcessJob(ctx context.Context, job *Job) error { return f(ctx, job) }

// JSONHandler returns a Handler that decodes each job's JSON payload into a
// T and calls fn with it. A payload that does not decode is a permanent
// failure: the job is dead-lettered, since retrying cannot fix it.
func JSONHandler[T any](fn func(ctx context.Context, job *Job, payload T) error) Handler {
	return HandlerFunc(func(ctx context.Context, job *Job) error {
		var v T
		if err := json.Unmarshal(job.Payload, &v); err != nil {
			return Permanent(fmt.Errorf("hopper: decode payload of job %s (%s) as %T: %w", job.ID, job.Name, v, err))
		}
		return fn(ctx, job, v)
	})
}

// Mux routes jobs to handlers by job name, like http.ServeMux routes
// requests by path. A job whose name has no handler is dead-lettered with
// ErrNoHandler. The zero value is not usable; create one with NewMux. Safe
// for concurrent use; handlers may be registered while a worker runs.
type Mux struct {
	mu sync.RWMutex
	m  map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{m: make(map[string]Handler)} }

// Handle registers h for jobs named name. It panics if name is empty, h is
// nil, or name is already registered (like http.ServeMux).
func (m *Mux) Handle(name string, h Handler) {
	if name == "" || h == nil {
		panic("hopper: Mux.Handle needs a name and a handler")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.m[name]; dup {
		panic("hopper: Mux.Handle: a handler for " + name + " is already registered")
	}
	m.m[name] = h
}

// HandleFunc registers f for jobs named name.
func (m *Mux) HandleFunc(name string, f func(ctx context.Context, job *Job) error) {
	m.Handle(name, HandlerFunc(f))
}

// ProcessJob dispatches job to the handler registered for its name.
func (m *Mux) ProcessJob(ctx context.Context, job *Job) error {
	m.mu.RLock()
	h := m.m[job.Name]
	m.mu.RUnlock()
	if h == nil {
		return Permanent(fmt.Errorf("%w %q", ErrNoHandler, job.Name))
	}
	return h.ProcessJob(ctx, job)
}
