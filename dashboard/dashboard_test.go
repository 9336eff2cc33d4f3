package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestNewRefusesBadInput(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	ok := func(*http.Request) bool { return true }
	cases := map[string]struct {
		client redis.UniversalClient
		opts   *Options
		field  string
	}{
		"nil client":         {nil, &Options{Unauthenticated: true}, "client"},
		"nil options":        {c, nil, "Options"},
		"no auth decision":   {c, &Options{}, "Options.Auth"},
		"auth and unauth":    {c, &Options{Auth: ok, Unauthenticated: true}, "Options.Unauthenticated"},
		"bad prefix":         {c, &Options{Auth: ok, Prefix: "a b"}, "Prefix"},
		"bad queue":          {c, &Options{Auth: ok, Queues: []string{"a{b}"}}, "queue name"},
		"fast refresh":       {c, &Options{Auth: ok, RefreshInterval: time.Millisecond}, "Options.RefreshInterval"},
		"big page size":      {c, &Options{Auth: ok, PageSize: 5000}, "Options.PageSize"},
		"bad trusted origin": {c, &Options{Auth: ok, TrustedOrigins: []string{"not a url"}}, "Options.TrustedOrigins"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h, err := New(tc.client, tc.opts)
			require.Nil(t, h)
			require.ErrorIs(t, err, hopper.ErrInvalid)
			var ve *hopper.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Contains(t, ve.Field, tc.field)
		})
	}
	h, err := New(c, &Options{Auth: ok, RefreshInterval: -1})
	require.NoError(t, err, "a negative refresh interval turns live updates off")
	require.NotNil(t, h)
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	auth := BasicAuth("admin", "s3cret")
	req := func(set func(r *http.Request)) *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		set(r)
		return r
	}
	require.True(t, auth(req(func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") })))
	require.False(t, auth(req(func(r *http.Request) { r.SetBasicAuth("admin", "wrong") })))
	require.False(t, auth(req(func(r *http.Request) { r.SetBasicAuth("root", "s3cret") })))
	require.False(t, auth(req(func(r *http.Request) { r.SetBasicAuth("admin", "s3cret2") })))
	require.False(t, auth(req(func(r *http.Request) {})))
	require.False(t, BasicAuth("", "")(req(func(r *http.Request) {})), "no credentials never match empty ones")
}

// routes are every GET route, for the auth and smoke tests.
var routes = []string{"/", "/queues/email", "/queues/email?state=dead", "/queues/email/jobs/c1", "/schedules",
	"/dlq", "/api/overview", "/api/queues/email", "/api/queues/email/jobs/c1", "/assets/style.css", "/assets/app.js"}

func TestAuthGuardsEveryRoute(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{Auth: BasicAuth("admin", "pw")})
		q := e.seed()
		for _, p := range routes {
			w := e.do("GET", mount+p, nil)
			require.Equal(t, http.StatusUnauthorized, w.Code, p)
			require.Contains(t, w.Header().Get("WWW-Authenticate"), "Basic")
			w = e.do("GET", mount+p, nil, "Authorization", "Basic "+basic("admin", "nope"))
			require.Equal(t, http.StatusUnauthorized, w.Code, p)
			w = e.do("GET", mount+p, nil, "Authorization", "Basic "+basic("admin", "pw"))
			require.Equal(t, http.StatusOK, w.Code, p)
		}
		// An unauthenticated mutation is refused before it reaches the queue.
		w := e.do("POST", mount+"/queues/email/actions/pause", url.Values{}, "Sec-Fetch-Site", "same-origin")
		require.Equal(t, http.StatusUnauthorized, w.Code)
		c, err := q.Counts(context.Background())
		require.NoError(t, err)
		require.False(t, c.Paused)

		// A custom Unauthorized handler replaces the challenge.
		e2 := setup(t, b, Options{Auth: func(*http.Request) bool { return false },
			Unauthorized: http.RedirectHandler("/login", http.StatusFound)})
		w = e2.do("GET", mount+"/", nil)
		require.Equal(t, http.StatusFound, w.Code)
		require.Equal(t, "/login", w.Header().Get("Location"))
	})
}

func basic(u, p string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(u, p)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestPages(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{Title: "Acme jobs"})
		q := e.seed()
		ctx := context.Background()
		_, err := q.UpsertSchedule(ctx, "nightly-report", "0 3 * * *", "ok", []byte(`{}`), &hopper.ScheduleOptions{TimeZone: "Europe/Paris"})
		require.NoError(t, err)
		require.NoError(t, q.Pause(ctx))

		// Overview: every queue with its counts, paused flag and sparkline.
		body := e.get("/")
		require.Contains(t, body, "<title>Queues · Acme jobs</title>")
		require.Contains(t, body, `href="./queues/email"`)
		require.Regexp(t, `data-live="email\|dead">2<`, body)
		require.Regexp(t, `data-live="email\|completed">1<`, body)
		require.Regexp(t, `data-live="email\|failed">1<`, body)
		require.Regexp(t, `data-live="email\|waiting">1<`, body)
		require.Regexp(t, `data-live="email\|delayed">1<`, body)
		require.Regexp(t, `data-flag="email\|paused">paused`, body, "the paused badge is visible")
		require.Regexp(t, `<polyline class="done" data-spark="email\|done" points="[0-9., ]+"`, body)
		require.Contains(t, body, `data-poll="./api/overview?minutes=60"`)

		// Queue page: one tab per state, the state's jobs.
		for state, id := range map[string]string{"waiting": "w1", "delayed": "d1", "failed": "f1", "completed": "c1", "dead": "x1"} {
			body = e.get("/queues/email?state=" + state)
			require.Contains(t, body, `href="../queues/email/jobs/`+id+`"`, state)
			require.Contains(t, body, `class="on">`+state, state)
		}
		body = e.get("/queues/email?state=dead")
		require.Contains(t, body, "permanent failure")
		require.NotContains(t, body, "jobs/c1")
		require.Contains(t, e.get("/queues/email?state=active"), "No active jobs")

		// Job page: payload pretty-printed, options, result, timeline.
		body = e.get("/queues/email/jobs/c1")
		require.Contains(t, body, "{\n  &#34;to&#34;: &#34;ada@example.com&#34;\n}")
		require.Contains(t, body, "&#34;sent&#34;: true", "the result")
		require.Contains(t, body, "completed")
		require.Contains(t, body, "attempt 1 started")
		require.Contains(t, body, `data-job-state="completed"`)
		require.Regexp(t, `(?s)class="ev ev-added">added<.*class="ev ev-active">active</span> attempt 1.*class="ev ev-completed">completed<`,
			body, "the job's events, in order")
		require.Contains(t, body, `<pre class="log">connecting to &lt;smtp.example.com&gt;</pre>`, "the job's log, escaped")
		body = e.get("/queues/email/jobs/f1")
		require.Contains(t, body, "boom: upstream said &lt;b&gt;no&lt;/b&gt;")
		require.Contains(t, body, "1h, 1h", "retry delays of a fixed backoff")
		require.Contains(t, body, "retry due")
		require.Regexp(t, `class="ev ev-failed">failed</span> — <span class="everr">boom: upstream said &lt;b&gt;no&lt;/b&gt;<`, body)
		body = e.get("/queues/email/jobs/p1")
		require.Contains(t, body, "handler exploded")
		require.Contains(t, body, "stack trace")
		require.Contains(t, body, "goroutine", "the job's recorded stack trace is shown")

		// Schedules, with next and last run; the dead-letter queue.
		body = e.get("/schedules")
		require.Contains(t, body, "nightly-report")
		require.Contains(t, body, "0 3 * * *")
		require.Contains(t, body, "Europe/Paris")
		require.Contains(t, body, "never")
		body = e.get("/dlq")
		require.Contains(t, body, "jobs/x1")
		require.Contains(t, body, "jobs/p1")
		require.Contains(t, body, "permanent failure")

		// JSON endpoints the pages poll.
		var l live
		require.NoError(t, json.Unmarshal([]byte(e.get("/api/overview?minutes=5")), &l))
		require.Equal(t, "2", l.Live["email|dead"])
		require.Equal(t, "1", l.Live["email|completed"])
		require.Equal(t, "2", l.Live["*|dead"], "the totals")
		require.True(t, l.Flags["email|paused"])
		require.Len(t, strings.Fields(l.Spark["email|done"]), 5, "one point per minute of the window")
		require.NoError(t, json.Unmarshal([]byte(e.get("/api/queues/email")), &l))
		require.Equal(t, "1", l.Live["email|waiting"])
		require.NoError(t, json.Unmarshal([]byte(e.get("/api/queues/email/jobs/f1")), &l))
		require.Equal(t, "failed", l.State)
		require.Equal(t, "1", l.Live["job|attempts"])

		// Assets are embedded and typed.
		w := e.do("GET", mount+"/assets/style.css", nil)
		require.Equal(t, "text/css; charset=utf-8", w.Header().Get("Content-Type"))
		w = e.do("GET", mount+"/assets/app.js", nil)
		require.Equal(t, "text/javascript; charset=utf-8", w.Header().Get("Content-Type"))

		// Not found.
		for _, p := range []string{"/queues/nope", "/queues/email/jobs/nope", "/api/queues/email/jobs/nope",
			"/assets/nope.css", "/nope", "/dlq?queue=nope", "/queues/bad%7Bname%7D"} {
			require.Equal(t, http.StatusNotFound, e.do("GET", mount+p, nil).Code, p)
		}
	})
}

func TestEmptyDashboard(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		require.Contains(t, e.get("/"), "No queues yet")
		require.Contains(t, e.get("/schedules"), "No recurring schedules")
		require.Contains(t, e.get("/dlq"), "No queues yet")
	})
}

func TestJobDataIsEscaped(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.queue("xss")
		ctx := context.Background()
		evil := "<script>alert(1)</script>"
		_, err := q.Add(ctx, evil, []byte(evil), &hopper.JobOptions{ID: "t1", Metadata: map[string]string{evil: evil}})
		require.NoError(t, err)
		_, err = q.AddJSON(ctx, "j", map[string]string{"html": evil}, &hopper.JobOptions{ID: "t2"})
		require.NoError(t, err)
		_, err = q.Add(ctx, "bin", []byte{0xff, 0xfe, '<', 's', 0}, &hopper.JobOptions{ID: "t3"})
		require.NoError(t, err)
		for _, p := range []string{"/", "/queues/xss", "/queues/xss/jobs/t1", "/queues/xss/jobs/t2", "/queues/xss/jobs/t3", "/dlq"} {
			body := e.get(p)
			require.NotContains(t, body, "<script>alert", p)
		}
		body := e.get("/queues/xss/jobs/t1")
		require.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
		require.Contains(t, e.get("/queues/xss/jobs/t2"), "&#34;html&#34;: &#34;\\u003cscript\\u003ealert(1)\\u003c/script\\u003e&#34;")
		require.Contains(t, e.get("/queues/xss/jobs/t3"), "binary, 5 bytes")
		require.Contains(t, e.get("/queues/xss"), "&lt;script&gt;alert(1)&lt;/script&gt;", "the job name in the list")
		// Every response carries a script policy that forbids inline scripts.
		w := e.do("GET", mount+"/queues/xss/jobs/t1", nil)
		require.Contains(t, w.Header().Get("Content-Security-Policy"), "script-src 'self'")
		require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	})
}

// actionOK posts an action and requires the redirect it answers.
func (e *env) actionOK(path string, form url.Values) string {
	e.t.Helper()
	w := e.post(path, form)
	require.Equal(e.t, http.StatusSeeOther, w.Code, "POST %s: %s", path, w.Body.String())
	loc := w.Header().Get("Location")
	require.True(e.t, strings.HasPrefix(loc, "../../../"), "a relative redirect: %s", loc)
	return loc
}

func TestActions(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.seed()
		ctx := context.Background()
		counts := func() hopper.Counts {
			c, err := q.Counts(ctx)
			require.NoError(t, err)
			return c
		}

		// Pause and resume.
		loc := e.actionOK("/queues/email/actions/pause", url.Values{"back": {"overview"}})
		require.Equal(t, "../../../?done=paused", loc)
		require.True(t, counts().Paused)
		require.Contains(t, e.get("/?done=paused"), "Queue paused")
		e.actionOK("/queues/email/actions/resume", url.Values{"back": {"queue"}})
		require.False(t, counts().Paused)

		// Retry a failed job (runs now) and a dead one (leaves the DLQ).
		loc = e.actionOK("/queues/email/actions/retry", url.Values{"id": {"f1"}, "back": {"job"}})
		require.Equal(t, "../../../queues/email/jobs/f1?done=retried", loc)
		require.Equal(t, hopper.StateWaiting, stateOf(t, q, "f1"))
		e.actionOK("/queues/email/actions/retry", url.Values{"id": {"x1"}, "back": {"dlq"}})
		require.Equal(t, hopper.StateWaiting, stateOf(t, q, "x1"))
		w := e.post("/queues/email/actions/retry", url.Values{"id": {"c1"}})
		require.Equal(t, http.StatusBadRequest, w.Code, "a completed job cannot be retried")
		require.Contains(t, w.Body.String(), "this one is completed")
		require.Equal(t, http.StatusNotFound, e.post("/queues/email/actions/retry", url.Values{"id": {"nope"}}).Code)

		// Promote a delayed job; remove one.
		e.actionOK("/queues/email/actions/promote", url.Values{"id": {"d1"}})
		require.Equal(t, hopper.StateWaiting, stateOf(t, q, "d1"))
		require.Equal(t, http.StatusNotFound, e.post("/queues/email/actions/promote", url.Values{"id": {"c1"}}).Code)
		loc = e.actionOK("/queues/email/actions/remove", url.Values{"id": {"c1"}, "state": {"completed"}, "back": {"job"}})
		require.Equal(t, "../../../queues/email?done=removed&state=completed", loc, "a removed job's page is gone")
		require.Equal(t, hopper.State(""), stateOf(t, q, "c1"))

		// Clean dead jobs by age (none is a day old), then retry all dead.
		loc = e.actionOK("/queues/email/actions/clean", url.Values{"state": {"dead"}, "older": {"24h"}})
		require.Contains(t, loc, "done=cleaned")
		require.NotContains(t, loc, "n=")
		require.Equal(t, int64(1), counts().Dead)
		for _, bad := range []string{"soon", "-1h", "876000h"} {
			w = e.post("/queues/email/actions/clean", url.Values{"state": {"dead"}, "older": {bad}})
			require.Equal(t, http.StatusBadRequest, w.Code, bad)
		}
		require.Equal(t, http.StatusBadRequest, e.post("/queues/email/actions/clean", url.Values{"state": {"waiting"}}).Code)
		e.actionOK("/queues/email/actions/retry-all", url.Values{"state": {"dead"}})
		require.Zero(t, counts().Dead)

		// Drain waiting.
		loc = e.actionOK("/queues/email/actions/drain", url.Values{"state": {"waiting"}})
		require.Contains(t, loc, "done=drained&n=5")
		require.Zero(t, counts().Waiting)
		require.Contains(t, e.get("/queues/email?done=drained&n=5"), "5 waiting (or delayed) job(s) deleted")

		// Promote all delayed (a bounded loop of Promote calls).
		for range 3 {
			_, err := q.Add(ctx, "ok", nil, &hopper.JobOptions{Delay: time.Hour})
			require.NoError(t, err)
		}
		loc = e.actionOK("/queues/email/actions/promote-all", url.Values{"state": {"delayed"}})
		require.Contains(t, loc, "n=3")
		require.Zero(t, counts().Delayed)
		require.Equal(t, int64(3), counts().Waiting)
		require.Equal(t, http.StatusBadRequest, e.post("/queues/email/actions/retry-all", url.Values{"state": {"waiting"}}).Code)

		// An unknown action or queue is a 404.
		require.Equal(t, http.StatusNotFound, e.post("/queues/email/actions/explode", url.Values{}).Code)
		require.Equal(t, http.StatusNotFound, e.post("/queues/nope/actions/pause", url.Values{}).Code)
	})
}
