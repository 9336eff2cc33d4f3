package hopper

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// DefaultTickBudget is how long a tick processes jobs when TickConfig has a
// Handler and sets no Budget.
const DefaultTickBudget = 10 * time.Second

// TickConfig configures TickHandler. Secret is required.
type TickConfig struct {
	// Secret is the bearer token callers must send:
	// "Authorization: Bearer <Secret>" (Vercel Cron sends CRON_SECRET so).
	// Required; at least 16 bytes.
	Secret string

	// Handler, if set, processes ready jobs during the tick until the queues
	// are empty or Budget runs out. Without it a tick only does maintenance
	// and leaves the jobs to workers.
	Handler Handler
	// Budget bounds the processing part of a tick. Jobs still running then
	// are handed back to waiting, attempt not spent. Defaults to
	// DefaultTickBudget. Keep it below your platform's function time limit.
	Budget time.Duration
	// Concurrency of the processing. Defaults to DefaultConcurrency.
	Concurrency int
	// MaxStalls, as in WorkerConfig. Defaults to DefaultMaxStalls.
	MaxStalls int
	// Logger, as in WorkerConfig.
	Logger *slog.Logger
}

// TickSummary is the JSON body a tick answers with.
type TickSummary struct {
	Queues     []TickQueue `json:"queues"`
	Completed  int64       `json:"completed"`
	Failed     int64       `json:"failed"`
	Dead       int64       `json:"dead"`
	DurationMs int64       `json:"duration_ms"`
	Error      string      `json:"error,omitempty"`
}

// TickQueue is one queue's part of a TickSummary.
type TickQueue struct {
	Queue          string `json:"queue"`
	Promoted       int    `json:"promoted"`
	Recovered      int    `json:"recovered"`
	DeadLettered   int    `json:"dead_lettered"`
	SchedulesFired int    `json:"schedules_fired"`
}

// TickHandler returns an http.Handler for serverless platforms that call a
// URL on a schedule and keep no process alive (Vercel Cron, Cloud Scheduler,
// a crontab with curl). Each authorised GET or POST runs one maintenance
// pass on every queue — promote due delayed jobs, fire due schedule ticks,
// recover expired leases — then, if cfg.Handler is set, processes ready jobs
// for up to cfg.Budget, and answers 200 with a JSON TickSummary. Requests
// without "Authorization: Bearer <Secret>" get 401 (compared in constant
// time); other methods 405; a Redis failure 503. Ticks are safe to run
// twice at once or back to back: every step is an atomic script.
//
// All queues must share one Redis client and key prefix.
func TickHandler(queues []*Queue, cfg *TickConfig) (http.Handler, error) {
	if len(queues) == 0 {
		return nil, invalid("queues", "", "at least one queue is required")
	}
	var c TickConfig
	if cfg != nil {
		c = *cfg
	}
	if len(c.Secret) < 16 {
		return nil, invalid("TickConfig.Secret", "(hidden)", "is required and must be at least 16 bytes")
	}
	if c.Budget == 0 {
		c.Budget = DefaultTickBudget
	}
	if c.Budget < 0 {
		return nil, invalid("TickConfig.Budget", c.Budget, "must not be negative")
	}
	names := map[string]int{}
	for _, q := range queues {
		if q == nil {
			return nil, invalid("queues", "nil", "nil queue")
		}
		if q.st.Client() != queues[0].st.Client() || q.cfg.Prefix != queues[0].cfg.Prefix {
			return nil, invalid("queues", q.name, "all queues must share one client and prefix")
		}
		names[q.name] = 1
	}
	wcfg := &WorkerConfig{Concurrency: c.Concurrency, Prefix: queues[0].cfg.Prefix, MaxStalls: c.MaxStalls,
		DisableScheduler: true, PollInterval: time.Second, Logger: c.Logger}
	// Validate the worker settings now, not at the first tick.
	resolved, err := wcfg.withDefaults()
	if err != nil {
		return nil, err
	}
	want := sha256.Sum256([]byte("Bearer " + c.Secret))
	return &tickHandler{queues: queues, names: names, cfg: c, wcfg: resolved, want: want}, nil
}

type tickHandler struct {
	queues []*Queue
	names  map[string]int
	cfg    TickConfig
	wcfg   WorkerConfig
	want   [32]byte
}

func (t *tickHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	if subtle.ConstantTimeCompare(got[:], t.want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hopper tick"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"unauthorized: send Authorization: Bearer <secret>"}` + "\n"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"method not allowed"}` + "\n"))
		return
	}
	sum, err := t.tick(r.Context())
	status := http.StatusOK
	if err != nil {
		sum.Error = err.Error()
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(sum)
}

// tick runs one maintenance pass and the optional processing.
func (t *tickHandler) tick(ctx context.Context) (TickSummary, error) {
	start := time.Now()
	sum := TickSummary{Queues: []TickQueue{}}
	defer func() { sum.DurationMs = time.Since(start).Milliseconds() }()
	for _, q := range t.queues {
		tq := TickQueue{Queue: q.name}
		r, err := q.st.Promote(ctx, q.nowArg(), promoteBatch, "")
		if err != nil {
			return sum, fmt.Errorf("hopper: tick: queue %s: %w", q.name, err)
		}
		tq.Promoted = r.Moved
		if r.NextSched >= 0 && r.NextSched <= r.Now {
			n, _, err := runSchedules(ctx, q.st, q.nowArg(), time.UnixMilli(r.Now), t.wcfg.Logger.With("queue", q.name))
			if err != nil {
				return sum, fmt.Errorf("hopper: tick: schedules of %s: %w", q.name, err)
			}
			tq.SchedulesFired = n
		}
		requeued, dead, err := q.st.Recover(ctx, q.nowArg(), t.wcfg.MaxStalls, recoverBatch,
			DefaultKeepDeadCount, DefaultKeepDeadAge.Milliseconds())
		if err != nil {
			return sum, fmt.Errorf("hopper: tick: queue %s: %w", q.name, err)
		}
		tq.Recovered, tq.DeadLettered = len(requeued), len(dead)
		sum.Queues = append(sum.Queues, tq)
	}
	if t.cfg.Handler == nil {
		return sum, nil
	}
	var completed, failed, dead atomic.Int64
	wc := t.wcfg
	wc.OnCompleted = func(context.Context, *Job) { completed.Add(1) }
	wc.OnFailed = func(context.Context, *Job, error) { failed.Add(1) }
	wc.OnDead = func(context.Context, *Job, error) { dead.Add(1) }
	w, err := NewMultiWorker(t.queues[0].st.Client(), t.names, t.cfg.Handler, &wc)
	if err != nil {
		return sum, err
	}
	w.drained = make(chan struct{}, 1)
	done := make(chan struct{})
	go func() { _ = w.Run(context.Background()); close(done) }()
	budget := time.NewTimer(t.cfg.Budget)
	defer budget.Stop()
	select {
	case <-w.drained:
	case <-budget.C:
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), min(t.cfg.Budget/10, 2*time.Second))
	defer cancel()
	_ = w.Shutdown(grace)
	<-done
	sum.Completed, sum.Failed, sum.Dead = completed.Load(), failed.Load(), dead.Load()
	return sum, nil
}
