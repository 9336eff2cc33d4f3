package dashboard

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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

// mount is where the tests mount the dashboard, as a user would.
const mount = "/admin/queues"

// env is one test's dashboard on one backend.
type env struct {
	t      *testing.T
	b      *redistest.Backend
	h      http.Handler // the application mux, dashboard under mount
	prefix string
}

var quiet = slog.New(slog.DiscardHandler)

// setup mounts a dashboard configured by opts (prefix and logger filled
// in) under mount.
func setup(t *testing.T, b *redistest.Backend, opts Options) *env {
	t.Helper()
	opts.Prefix = b.Prefix
	if opts.Auth == nil {
		opts.Unauthenticated = true
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	d, err := New(b.Client, &opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, d))
	return &env{t: t, b: b, h: mux, prefix: b.Prefix}
}

func (e *env) queue(name string) *hopper.Queue {
	e.t.Helper()
	q, err := hopper.NewQueue(e.b.Client, name, &hopper.QueueConfig{Prefix: e.prefix, Logger: quiet})
	require.NoError(e.t, err)
	return q
}

// do sends a request to the application and returns the response.
func (e *env) do(method, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// get fetches a page under mount and requires status 200.
func (e *env) get(path string) string {
	e.t.Helper()
	w := e.do("GET", mount+path, nil)
	require.Equal(e.t, http.StatusOK, w.Code, "GET %s: %s", path, w.Body.String())
	return w.Body.String()
}

// post runs an action as a same-origin browser form would.
func (e *env) post(path string, form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do("POST", mount+path, form, "Sec-Fetch-Site", "same-origin", "Origin", "http://example.com")
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

// stateOf returns job id's state, "" if it does not exist.
func stateOf(t *testing.T, q *hopper.Queue, id string) hopper.State {
	t.Helper()
	j, err := q.Job(context.Background(), id)
	if errors.Is(err, hopper.ErrJobNotFound) {
		return ""
	}
	require.NoError(t, err)
	return j.State
}

func waitState(t *testing.T, q *hopper.Queue, id string, s hopper.State) {
	t.Helper()
	waitFor(t, 10*time.Second, "job "+id+" "+string(s), func() bool { return stateOf(t, q, id) == s })
}

// errBoom is the failure of the seeded failing jobs.
var errBoom = errors.New("boom: upstream said <b>no</b>")

// seed fills queue "email" with one job per state and runs a worker until
// they settled: "w1" waiting, "d1" delayed, "c1" completed, "f1" failed
// (awaiting a retry in an hour), "x1" dead, "p1" dead by a panic. It
// returns the queue. The worker is stopped before seed returns, so the
// test controls what runs next.
func (e *env) seed() *hopper.Queue {
	e.t.Helper()
	ctx := context.Background()
	q := e.queue("email")
	mux := hopper.NewMux()
	mux.HandleFunc("ok", func(ctx context.Context, j *hopper.Job) error {
		if err := j.Log(ctx, "connecting to <smtp.example.com>"); err != nil {
			return err
		}
		j.SetResult([]byte(`{"sent":true}`))
		return nil
	})
	mux.HandleFunc("fail", func(context.Context, *hopper.Job) error { return errBoom })
	mux.HandleFunc("die", func(context.Context, *hopper.Job) error { return hopper.Permanent(errBoom) })
	mux.HandleFunc("crash", func(context.Context, *hopper.Job) error { panic("handler exploded") })
	hourly := hopper.Fixed(time.Hour)
	_, err := q.AddBulk(ctx, []hopper.NewJob{
		{Name: "ok", Payload: []byte(`{"to":"ada@example.com"}`), Options: &hopper.JobOptions{ID: "c1"}},
		{Name: "fail", Payload: []byte(`{"to":"bob@example.com"}`), Options: &hopper.JobOptions{ID: "f1", Attempts: 3, Backoff: hourly}},
		{Name: "die", Payload: []byte(`{"to":"eve@example.com"}`), Options: &hopper.JobOptions{ID: "x1"}},
		{Name: "crash", Payload: []byte(`{}`), Options: &hopper.JobOptions{ID: "p1", Attempts: 1}},
	})
	require.NoError(e.t, err)
	w, err := hopper.NewWorker(e.b.Client, "email", mux, &hopper.WorkerConfig{Prefix: e.prefix, Logger: quiet,
		PollInterval: time.Second, LeaseDuration: 2 * time.Second})
	require.NoError(e.t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	waitState(e.t, q, "c1", hopper.StateCompleted)
	waitState(e.t, q, "f1", hopper.StateFailed)
	waitState(e.t, q, "x1", hopper.StateDead)
	waitState(e.t, q, "p1", hopper.StateDead)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(e.t, w.Shutdown(sctx))
	require.NoError(e.t, <-done)
	_, err = q.Add(ctx, "ok", []byte(`{"to":"cy@example.com"}`), &hopper.JobOptions{ID: "w1"})
	require.NoError(e.t, err)
	_, err = q.Add(ctx, "ok", []byte(`{"to":"di@example.com"}`), &hopper.JobOptions{ID: "d1", Delay: time.Hour})
	require.NoError(e.t, err)
	return q
}

// newRecorder serves one request straight to h (mounted at the root).
func newRecorder(h http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}
