package hopper

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testSecret = "s3cret-s3cret-s3cret"

func tickRequest(t *testing.T, h http.Handler, method, auth string) (int, TickSummary, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/api/cron/hopper", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	var sum TickSummary
	if rr.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &sum))
	}
	require.Equal(t, "application/json", rr.Header().Get("Content-Type"))
	return rr.Code, sum, rr.Body.String()
}

func TestTickHandlerAuth(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue("tick", nil)
		_, err := TickHandler([]*Queue{q}, &TickConfig{})
		require.ErrorIs(t, err, ErrInvalid, "the secret is required")
		_, err = TickHandler([]*Queue{q}, &TickConfig{Secret: "short"})
		require.ErrorIs(t, err, ErrInvalid)
		_, err = TickHandler(nil, &TickConfig{Secret: testSecret})
		require.ErrorIs(t, err, ErrInvalid)
		th, err := TickHandler([]*Queue{q}, &TickConfig{Secret: testSecret})
		require.NoError(t, err)

		before := h.cmds.Load()
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + testSecret + "x", testSecret, "bearer " + testSecret} {
			code, _, body := tickRequest(t, th, http.MethodGet, auth)
			require.Equal(t, http.StatusUnauthorized, code, "auth %q", auth)
			require.JSONEq(t, `{"error":"unauthorized: send Authorization: Bearer <secret>"}`, body)
		}
		code, _, _ := tickRequest(t, th, http.MethodDelete, "Bearer "+testSecret)
		require.Equal(t, http.StatusMethodNotAllowed, code)
		require.Equal(t, before, h.cmds.Load(), "refused requests touch no Redis")

		code, sum, _ := tickRequest(t, th, http.MethodGet, "Bearer "+testSecret)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, []TickQueue{{Queue: "tick"}}, sum.Queues)
	})
}

func TestTickHandlerMaintenanceAndProcessing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("tickp", nil)
		t0 := time.Now()
		// An expired lease, a due delayed job, and a due schedule tick.
		_, err := q.Add(ctx, "stalled", nil, &JobOptions{ID: "stalled"})
		require.NoError(t, err)
		claimed, err := q.st.Fetch(ctx, 0, 5, 1) // a 1ms lease nobody extends
		require.NoError(t, err)
		require.Len(t, claimed.Jobs, 1)
		d, err := q.Add(ctx, "delayed", nil, &JobOptions{Delay: 20 * time.Millisecond})
		require.NoError(t, err)
		require.Equal(t, StateDelayed, d.State)
		at(q, t0.Add(-time.Hour))
		_, err = q.UpsertSchedule(ctx, "hourly", "@every 30m", "scheduled", nil, nil)
		require.NoError(t, err)
		q.now = nil
		_, err = q.Add(ctx, "fails", nil, &JobOptions{Attempts: 1})
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond) // let the lease expire and the delay pass

		var mu sync.Mutex
		ran := map[string]int{}
		th, err := TickHandler([]*Queue{q}, &TickConfig{Secret: testSecret, Budget: 5 * time.Second,
			Logger: slog.New(slog.DiscardHandler),
			Handler: HandlerFunc(func(ctx context.Context, job *Job) error {
				mu.Lock()
				ran[job.Name]++
				mu.Unlock()
				if job.Name == "fails" {
					return errors.New("no")
				}
				return nil
			})})
		require.NoError(t, err)
		code, sum, body := tickRequest(t, th, http.MethodPost, "Bearer "+testSecret)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, []TickQueue{{Queue: "tickp", Promoted: 1, Recovered: 1, SchedulesFired: 1}}, sum.Queues)
		require.EqualValues(t, 3, sum.Completed)
		require.EqualValues(t, 1, sum.Dead)
		require.Equal(t, map[string]int{"delayed": 1, "stalled": 1, "scheduled": 1, "fails": 1}, ran)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, Counts{Completed: 3, Dead: 1}, c)
	})
}

// Two ticks at once: each job runs once, each schedule tick fires once.
func TestTickHandlerConcurrent(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("tickc", nil)
		at(q, time.Now().Add(-time.Hour))
		_, err := q.UpsertSchedule(ctx, "s", "@every 30m", "n", nil, nil)
		require.NoError(t, err)
		q.now = nil
		for range 20 {
			_, err := q.Add(ctx, "n", nil, nil)
			require.NoError(t, err)
		}
		rec := newRecorder(nil)
		th, err := TickHandler([]*Queue{q}, &TickConfig{Secret: testSecret, Budget: 5 * time.Second,
			Logger: slog.New(slog.DiscardHandler), Handler: rec})
		require.NoError(t, err)
		var wg sync.WaitGroup
		sums := make([]TickSummary, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, s, body := tickRequest(t, th, http.MethodGet, "Bearer "+testSecret)
				require.Equal(t, http.StatusOK, code, body)
				sums[i] = s
			}()
		}
		wg.Wait()
		require.Equal(t, 1, sums[0].Queues[0].SchedulesFired+sums[1].Queues[0].SchedulesFired)
		require.EqualValues(t, 21, sums[0].Completed+sums[1].Completed)
		require.Equal(t, 21, rec.total())
		for id, n := range rec.runs {
			require.Equal(t, 1, n, id)
		}
	})
}

func TestTickHandlerRedisDown(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		if h.mr == nil {
			t.Skip("stops the server")
		}
		q := h.queue("tickd", nil)
		th, err := TickHandler([]*Queue{q}, &TickConfig{Secret: testSecret})
		require.NoError(t, err)
		h.mr.Close()
		code, _, body := tickRequest(t, th, http.MethodGet, "Bearer "+testSecret)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "hopper: tick")
	})
}
