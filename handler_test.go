package hopper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type greeting struct {
	To string `json:"to"`
}

func TestMuxAndJSONHandler(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("mux", nil)
		got := make(chan string, 4)
		mux := NewMux()
		mux.Handle("greet", JSONHandler(func(ctx context.Context, job *Job, g greeting) error {
			got <- "greet:" + g.To
			return nil
		}))
		mux.HandleFunc("plain", func(ctx context.Context, job *Job) error {
			got <- "plain:" + string(job.Payload)
			return nil
		})
		require.Panics(t, func() { mux.HandleFunc("plain", nil) })
		require.Panics(t, func() { mux.Handle("plain", HandlerFunc(func(context.Context, *Job) error { return nil })) })
		h.worker("mux", mux, nil)

		_, err := q.AddJSON(ctx, "greet", greeting{To: "ann"}, nil)
		require.NoError(t, err)
		_, err = q.Add(ctx, "plain", []byte("hi"), nil)
		require.NoError(t, err)
		seen := map[string]bool{<-got: true, <-got: true}
		require.Equal(t, map[string]bool{"greet:ann": true, "plain:hi": true}, seen)

		bad, err := q.Add(ctx, "greet", []byte("{not json"), &JobOptions{Attempts: 5})
		require.NoError(t, err)
		j := waitState(t, q, bad.ID, StateDead, 5*time.Second)
		require.Equal(t, 1, j.AttemptsMade, "undecodable payload is permanent")
		require.Contains(t, j.LastError, "decode payload")

		unknown, err := q.Add(ctx, "nobody-handles-this", nil, &JobOptions{Attempts: 5})
		require.NoError(t, err)
		j = waitState(t, q, unknown.ID, StateDead, 5*time.Second)
		require.Contains(t, j.DeadReason, `no handler for job name "nobody-handles-this"`)
		require.Equal(t, 1, j.AttemptsMade)
	})
}

func TestCustomBackoffOnWorker(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("cb", nil)
		errTransient := errors.New("transient")
		calls := make(chan int, 4)
		cfg := *fastWorkerConfig()
		cfg.Backoffs = map[string]BackoffFunc{"by-error": func(attempt int, err error) time.Duration {
			calls <- attempt
			if errors.Is(err, errTransient) {
				return 10 * time.Millisecond
			}
			return time.Hour
		}}
		cfg.DefaultBackoff = func(attempt int, err error) time.Duration { return 20 * time.Millisecond }
		h.worker("cb", newRecorder(func(ctx context.Context, job *Job) error {
			if job.AttemptsMade < 2 {
				return errTransient
			}
			return nil
		}), &cfg)
		a, err := q.Add(ctx, "n", nil, &JobOptions{Backoff: Custom("by-error")})
		require.NoError(t, err)
		waitState(t, q, a.ID, StateCompleted, 5*time.Second)
		require.Equal(t, 1, <-calls)
		require.Equal(t, 2, <-calls)
		// No backoff on the job: the worker's DefaultBackoff (20ms) applies,
		// and an unknown custom name falls back to it too.
		b, err := q.Add(ctx, "n", nil, nil)
		require.NoError(t, err)
		c, err := q.Add(ctx, "n", nil, &JobOptions{Backoff: Custom("unregistered")})
		require.NoError(t, err)
		waitState(t, q, b.ID, StateCompleted, 5*time.Second)
		waitState(t, q, c.ID, StateCompleted, 5*time.Second)
	})
}

func TestWorkerConfigValidation(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		hd := newRecorder(nil)
		_, err := NewWorker(nil, "q", hd, nil)
		require.ErrorIs(t, err, ErrInvalid)
		_, err = NewWorker(h.client, "q", nil, nil)
		require.ErrorIs(t, err, ErrInvalid)
		_, err = NewWorker(h.client, "bad name", hd, nil)
		require.ErrorIs(t, err, ErrInvalid)
		_, err = NewMultiWorker(h.client, map[string]int{}, hd, nil)
		require.ErrorIs(t, err, ErrInvalid)
		_, err = NewMultiWorker(h.client, map[string]int{"a": 0}, hd, nil)
		require.ErrorIs(t, err, ErrInvalid)
		for field, cfg := range map[string]WorkerConfig{
			"WorkerConfig.Concurrency":       {Concurrency: -1},
			"WorkerConfig.Prefix":            {Prefix: "x y"},
			"WorkerConfig.LeaseDuration":     {LeaseDuration: time.Millisecond},
			"WorkerConfig.HeartbeatInterval": {LeaseDuration: time.Second, HeartbeatInterval: time.Second},
			"WorkerConfig.PollInterval":      {PollInterval: 500 * time.Millisecond},
			"WorkerConfig.MaxStalls":         {MaxStalls: -1},
			"WorkerConfig.ShutdownTimeout":   {ShutdownTimeout: -time.Second},
			"WorkerConfig.Backoffs":          {Backoffs: map[string]BackoffFunc{"x": nil}},
		} {
			_, err := NewWorker(h.client, "q", hd, &cfg)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, field)
			require.Equal(t, field, ve.Field)
		}
		cfg := WorkerConfig{}
		w, err := NewWorker(h.client, "q", hd, &cfg)
		require.NoError(t, err)
		require.Equal(t, WorkerConfig{}, cfg, "the caller's config is not modified")
		require.Equal(t, DefaultConcurrency, w.cfg.Concurrency)
		require.Equal(t, DefaultLeaseDuration/3, w.cfg.HeartbeatInterval)
		require.NoError(t, w.Close())
	})
}
