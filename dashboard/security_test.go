package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestCrossOriginPostsAreRefused(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{TrustedOrigins: []string{"https://admin.example.org"}})
		q := e.seed()
		paused := func() bool {
			c, err := q.Counts(context.Background())
			require.NoError(t, err)
			return c.Paused
		}
		p := mount + "/queues/email/actions/pause"
		for name, hdr := range map[string][]string{
			"sec-fetch-site cross-site": {"Sec-Fetch-Site", "cross-site"},
			"sec-fetch-site same-site":  {"Sec-Fetch-Site", "same-site"},
			"foreign origin":            {"Origin", "https://evil.example.net"},
		} {
			w := e.do("POST", p, url.Values{}, hdr...)
			require.Equal(t, http.StatusForbidden, w.Code, name)
			require.Contains(t, w.Body.String(), "cross-origin protection", name)
			require.False(t, paused(), name)
		}
		// A trusted origin (a proxy that rewrites Host) may post.
		w := e.do("POST", p, url.Values{}, "Origin", "https://admin.example.org", "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusSeeOther, w.Code)
		require.True(t, paused())
		// Same origin by the Origin header alone (no Sec-Fetch-Site).
		w = e.do("POST", mount+"/queues/email/actions/resume", url.Values{}, "Origin", "http://example.com")
		require.Equal(t, http.StatusSeeOther, w.Code)
		require.False(t, paused())
	})
}

func TestMutationsNeedPost(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.seed()
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
			w := e.do(m, mount+"/queues/email/actions/remove?id=w1", url.Values{"id": {"w1"}}, "Sec-Fetch-Site", "same-origin")
			require.NotEqual(t, http.StatusSeeOther, w.Code, m)
			require.Equal(t, hopper.StateWaiting, stateOf(t, q, "w1"), m)
		}
	})
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{ReadOnly: true})
		q := e.seed()
		for _, p := range []string{"/", "/queues/email?state=dead", "/queues/email?state=waiting", "/queues/email/jobs/x1", "/dlq", "/schedules"} {
			body := e.get(p)
			require.NotContains(t, body, `method="post"`, p)
			require.Contains(t, body, "read-only", p)
		}
		for _, a := range []string{"pause", "retry", "remove", "drain", "retry-all", "clean", "trigger", "nope"} {
			w := e.post("/queues/email/actions/"+a, url.Values{"id": {"x1"}, "state": {"dead"}, "key": {"k"}})
			require.Equal(t, http.StatusForbidden, w.Code, a)
			require.Contains(t, w.Body.String(), "read-only", a)
		}
		c, err := q.Counts(context.Background())
		require.NoError(t, err)
		require.Equal(t, hopper.Counts{Waiting: 1, Delayed: 1, Failed: 1, Completed: 1, Dead: 2}, c)
	})
}

func TestClamping(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{PageSize: 10})
		q := e.queue("big")
		jobs := make([]hopper.NewJob, 150)
		for i := range jobs {
			jobs[i] = hopper.NewJob{Name: "n", Payload: []byte("{}")}
		}
		_, err := q.AddBulk(context.Background(), jobs)
		require.NoError(t, err)
		rows := regexp.MustCompile(`class="jid" href=`)
		require.Len(t, rows.FindAllString(e.get("/queues/big"), -1), 10, "the configured page size")
		require.Len(t, rows.FindAllString(e.get("/queues/big?size=100000"), -1), MaxPageSize, "clamped to MaxPageSize")
		require.Len(t, rows.FindAllString(e.get("/queues/big?size=-3"), -1), 1, "clamped to 1")
		require.Contains(t, e.get("/queues/big?size=20&page=-5"), "page 1 of 8")
		require.Contains(t, e.get("/queues/big?size=20&page=999999999"), "No waiting jobs on this page")
		require.Contains(t, e.get("/queues/big?size=20&page=8"), "page 8 of 8")
		require.Contains(t, e.get("/queues/big?state=bogus"), `class="on">waiting`, "an unknown state shows waiting")

		var l live
		require.NoError(t, json.Unmarshal([]byte(e.get("/api/overview?minutes=100000")), &l))
		require.Len(t, strings.Fields(l.Spark["big|done"]), MaxMinutes)
		require.NoError(t, json.Unmarshal([]byte(e.get("/api/overview?minutes=1")), &l))
		require.Len(t, strings.Fields(l.Spark["big|done"]), MinMinutes)
	})
}

func TestFixedQueueList(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{Queues: []string{"email"}})
		e.seed()
		_, err := e.queue("secret").Add(context.Background(), "x", nil, nil)
		require.NoError(t, err)
		require.NotContains(t, e.get("/"), "secret")
		require.Equal(t, http.StatusNotFound, e.do("GET", mount+"/queues/secret", nil).Code)
		require.Equal(t, http.StatusNotFound, e.post("/queues/secret/actions/pause", url.Values{}).Code)
	})
}

func TestNoServerInternalsInResponses(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		// A panicking Auth hook: a plain 500, no stack trace.
		e := setup(t, b, Options{Auth: func(*http.Request) bool { panic("auth backend down at db.internal:5432") }})
		w := e.do("GET", mount+"/", nil)
		require.Equal(t, http.StatusInternalServerError, w.Code)
		require.NotContains(t, w.Body.String(), "goroutine")
		require.NotContains(t, w.Body.String(), "db.internal")
		require.NotContains(t, w.Body.String(), ".go:")
	})
	// Redis unreachable: a generic message, not the error (which names the
	// address).
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = down.Close() })
	d, err := New(down, &Options{Unauthenticated: true, Logger: quiet})
	require.NoError(t, err)
	for _, p := range []string{"/", "/queues/email", "/api/overview", "/dlq"} {
		w := newRecorder(d, "GET", p)
		require.Equal(t, http.StatusInternalServerError, w.Code, p)
		require.NotContains(t, w.Body.String(), "127.0.0.1", p)
		require.NotContains(t, w.Body.String(), "dial", p)
	}
}

func TestMounting(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		e.seed()
		// The mount point without its slash redirects to it, relatively,
		// also when no ServeMux did it first.
		d, err := New(b.Client, &Options{Unauthenticated: true, Prefix: b.Prefix})
		require.NoError(t, err)
		w := newRecorder(http.StripPrefix(mount, d), "GET", mount+"?x=1")
		require.Equal(t, http.StatusMovedPermanently, w.Code)
		require.Equal(t, "./queues/", w.Header().Get("Location"))

		// Follow every link of every page: each resolves, relative to the
		// page's URL, to a page under the mount point that answers 200.
		seen := map[string]bool{}
		todo := []string{mount + "/"}
		href := regexp.MustCompile(`(?:href|src|action)="([^"]*)"`)
		for len(todo) > 0 && len(seen) < 80 {
			page := todo[0]
			todo = todo[1:]
			if seen[page] {
				continue
			}
			seen[page] = true
			w := e.do("GET", page, nil)
			require.Equal(t, http.StatusOK, w.Code, page)
			if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
				continue
			}
			base, err := url.Parse("http://example.com" + page)
			require.NoError(t, err)
			for _, m := range href.FindAllStringSubmatch(w.Body.String(), -1) {
				ref, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
				require.NoError(t, err)
				abs := base.ResolveReference(ref)
				require.True(t, strings.HasPrefix(abs.Path, mount+"/"), "%s on %s leaves the mount point", m[1], page)
				if strings.Contains(abs.Path, "/actions/") {
					continue // a form
				}
				todo = append(todo, abs.RequestURI())
			}
		}
		require.True(t, seen[mount+"/queues/email/jobs/x1"], "the crawl reached a job page")
		require.True(t, seen[mount+"/dlq"])
	})
}

func TestJobIDsWithSlashes(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "dash", func(t *testing.T, b *redistest.Backend) {
		e := setup(t, b, Options{})
		q := e.queue("paths")
		id := "team/42:sync@a+b=c"
		_, err := q.Add(context.Background(), "n", []byte(`"x"`), &hopper.JobOptions{ID: id})
		require.NoError(t, err)
		require.Contains(t, e.get("/queues/paths"), `href="../queues/paths/jobs/team%2F42:sync@a&#43;b=c"`)
		shown := "team/42:sync@a&#43;b=c" // html/template escapes '+'
		require.Contains(t, e.get("/queues/paths/jobs/team%2F42:sync@a+b=c"), shown)
		require.Contains(t, e.get("/queues/paths/jobs/team/42:sync@a+b=c"), shown)
		e.actionOK("/queues/paths/actions/remove", url.Values{"id": {id}, "back": {"job"}})
		require.Equal(t, hopper.State(""), stateOf(t, q, id))
	})
}
