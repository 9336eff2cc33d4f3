package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/hopperq/hopper/internal/syncbuf"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	redis.SetLogger(redistest.QuietLogger{})
	os.Exit(m.Run())
}

// cli runs the command line against one backend.
type cli struct {
	t      *testing.T
	url    string
	prefix string
}

// run runs hopper with args (plus --redis and --prefix) and returns the
// exit code, stdout and stderr.
func (c cli) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--redis", c.url, "--prefix", c.prefix)
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func (c cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run("", args...)
	require.Equal(c.t, exitOK, code, "hopper %v: %s", args, errs)
	return out
}

// backendURL is the Redis URL of a test backend.
func backendURL(b *redistest.Backend) string {
	switch b.Name {
	case "miniredis":
		return "redis://" + b.Miniredis.Addr()
	case "cluster":
		return "redis://" + os.Getenv("HOPPER_TEST_REDIS_CLUSTER")
	}
	return "redis://" + os.Getenv("HOPPER_TEST_REDIS_ADDR")
}

var quiet = slog.New(slog.DiscardHandler)

// seed fills queue "mail": c1 completed (with a log line), d1 dead, f1
// failed (retry in an hour), w1 waiting, later delayed, and a schedule.
func seed(t *testing.T, b *redistest.Backend) *hopper.Queue {
	t.Helper()
	ctx := context.Background()
	q, err := hopper.NewQueue(b.Client, "mail", &hopper.QueueConfig{Prefix: b.Prefix, Logger: quiet})
	require.NoError(t, err)
	_, err = q.AddBulk(ctx, []hopper.NewJob{
		{Name: "ok", Payload: []byte(`{"to":"ada@example.com"}`), Options: &hopper.JobOptions{ID: "c1"}},
		{Name: "bad", Options: &hopper.JobOptions{ID: "d1"}},
		{Name: "flaky", Options: &hopper.JobOptions{ID: "f1", Attempts: 3, Backoff: hopper.Fixed(time.Hour)}},
	})
	require.NoError(t, err)
	w, err := hopper.NewWorker(b.Client, "mail", hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		switch j.Name {
		case "bad":
			return hopper.Permanent(errors.New("mailbox unavailable"))
		case "flaky":
			return errors.New("smtp timeout")
		}
		j.SetResult([]byte(`{"sent":true}`))
		return j.Log(ctx, "handed to smtp.example.com")
	}), &hopper.WorkerConfig{Prefix: b.Prefix, Logger: quiet, PollInterval: time.Second})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	_, err = q.Wait(ctx, "c1")
	require.NoError(t, err)
	_, err = q.Wait(ctx, "d1")
	require.ErrorIs(t, err, hopper.ErrJobDead)
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := q.Job(ctx, "f1")
		require.NoError(t, err)
		if j.State == hopper.StateFailed {
			break
		}
		require.True(t, time.Now().Before(deadline), "f1 fails")
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, w.Close())
	require.NoError(t, <-done)
	_, err = q.Add(ctx, "ok", nil, &hopper.JobOptions{ID: "w1"})
	require.NoError(t, err)
	_, err = q.Add(ctx, "ok", nil, &hopper.JobOptions{ID: "later", Delay: time.Hour})
	require.NoError(t, err)
	_, err = q.UpsertSchedule(ctx, "nightly", "0 3 * * *", "ok", nil, nil)
	require.NoError(t, err)
	return q
}

func state(t *testing.T, q *hopper.Queue, id string) hopper.State {
	t.Helper()
	j, err := q.Job(context.Background(), id)
	if errors.Is(err, hopper.ErrJobNotFound) {
		return ""
	}
	require.NoError(t, err)
	return j.State
}

func TestReadCommands(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "cli", func(t *testing.T, b *redistest.Backend) {
		c := cli{t, backendURL(b), b.Prefix}
		seed(t, b)

		out := c.ok("queues")
		require.Regexp(t, `QUEUE\s+WAITING\s+ACTIVE\s+DELAYED\s+FAILED\s+COMPLETED\s+DEAD\s+PAUSED`, out)
		require.Regexp(t, `mail\s+1\s+0\s+1\s+1\s+1\s+1\s+false`, out)
		var qs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.ok("queues", "--json")), &qs))
		require.Equal(t, "mail", qs[0]["queue"])
		require.EqualValues(t, 1, qs[0]["Dead"])

		out = c.ok("stats", "mail")
		require.Regexp(t, `completed\s+1\n`, out)
		require.Regexp(t, `last hour\s+1 completed, 2 failed`, out)

		out = c.ok("jobs", "mail", "--state", "dead")
		require.Regexp(t, `d1\s+bad\s+dead\s+1/25`, out)
		require.Contains(t, out, "mailbox unavailable")
		var jobs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.ok("jobs", "--state", "failed", "mail", "--json")), &jobs))
		require.Len(t, jobs, 1)
		require.Equal(t, "f1", jobs[0]["id"])
		require.Contains(t, c.ok("jobs", "mail", "--state", "dead", "--page", "2"), "(no dead jobs on page 2)")

		out = c.ok("job", "mail", "c1")
		require.Regexp(t, `state\s+completed`, out)
		require.Regexp(t, `result\s+\{"sent":true\}`, out)
		require.Regexp(t, `log\s+\S+\s+attempt 1\s+handed to smtp.example.com`, out)
		var j map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.ok("job", "mail", "d1", "--json")), &j))
		require.Equal(t, "dead", j["state"])
		require.Contains(t, j["dead_reason"], "permanent failure")

		out = c.ok("events", "mail")
		require.Regexp(t, `added\s+c1`, out)
		require.Regexp(t, `active\s+c1\s+attempt 1`, out)
		require.Regexp(t, `dead\s+d1\s+mailbox unavailable`, out)
		lines := strings.Split(strings.TrimSpace(c.ok("events", "mail", "--json")), "\n")
		var ev hopper.Event
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &ev))
		require.Equal(t, hopper.EventAdded, ev.Type)

		out = c.ok("schedules", "mail")
		require.Regexp(t, `nightly\s+0 3 \* \* \*\s+ok`, out)

		// Not found: exit 3.
		for _, args := range [][]string{{"stats", "nope"}, {"job", "mail", "nope"}, {"retry", "mail", "c1"},
			{"trigger", "mail", "nope"}, {"jobs", "nope"}} {
			code, _, errs := c.run("", args...)
			require.Equal(t, exitNotFound, code, "%v: %s", args, errs)
		}
		// Usage: exit 2.
		for _, args := range [][]string{{"nope"}, {"jobs"}, {"job", "mail"}, {"stats", "mail", "extra"},
			{"jobs", "mail", "--state", "bogus"}, {"jobs", "mail", "--page", "0"}, {"jobs", "mail", "--nope"},
			{"retry-all", "mail"}, {"clean", "mail", "--yes"}, {"stats", "bad{name}"}} {
			code, _, errs := c.run("", args...)
			require.Equal(t, exitUsage, code, "%v: %s", args, errs)
		}
	})
}

func TestWriteCommands(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "cli", func(t *testing.T, b *redistest.Backend) {
		c := cli{t, backendURL(b), b.Prefix}
		q := seed(t, b)
		ctx := context.Background()

		require.Contains(t, c.ok("retry", "mail", "d1"), "retried d1")
		require.Equal(t, hopper.StateWaiting, state(t, q, "d1"))
		require.Contains(t, c.ok("promote", "mail", "later"), "promoted later")
		require.Equal(t, hopper.StateWaiting, state(t, q, "later"))
		require.Contains(t, c.ok("retry-all", "mail", "--state", "failed"), "retried 1 failed jobs")
		require.Equal(t, hopper.StateWaiting, state(t, q, "f1"))

		c.ok("pause", "mail")
		cs, err := q.Counts(ctx)
		require.NoError(t, err)
		require.True(t, cs.Paused)
		c.ok("resume", "mail")
		cs, err = q.Counts(ctx)
		require.NoError(t, err)
		require.False(t, cs.Paused)

		out := c.ok("trigger", "mail", "nightly")
		require.Contains(t, out, "enqueued nightly@manual-")

		// Destructive commands refuse without --yes when stdin is no terminal.
		for _, args := range [][]string{{"remove", "mail", "w1"}, {"purge-dlq", "mail"}, {"drain", "mail"},
			{"clean", "mail", "--state", "completed"}, {"obliterate", "mail"}} {
			code, _, errs := c.run("yes\n", args...)
			require.Equal(t, exitUsage, code, "%v", args)
			require.Contains(t, errs, "refusing without --yes")
		}
		require.Equal(t, hopper.StateWaiting, state(t, q, "w1"), "nothing was removed")

		require.Contains(t, c.ok("remove", "mail", "w1", "--yes"), "removed w1")
		require.Equal(t, hopper.State(""), state(t, q, "w1"))
		require.Contains(t, c.ok("clean", "mail", "--state", "completed", "--yes"), "deleted 1 completed jobs")
		var res map[string]int
		require.NoError(t, json.Unmarshal([]byte(c.ok("drain", "mail", "--yes", "--json")), &res))
		require.GreaterOrEqual(t, res["deleted"], 4, "d1, later, f1 and the triggered job")
		require.Contains(t, c.ok("purge-dlq", "mail", "--yes"), "deleted 0 dead jobs")
		require.Contains(t, c.ok("obliterate", "mail", "--yes"), "obliterated mail")
		code, _, _ := c.run("", "stats", "mail")
		require.Equal(t, exitNotFound, code, "the queue is gone")
	})
}

func TestBadURLAndRedisDown(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	require.Equal(t, exitUsage, run(context.Background(), []string{"queues", "--redis", "http://x"}, nil, &out, &errb))
	require.Contains(t, errb.String(), "bad Redis URL")
	errb.Reset()
	require.Equal(t, exitError, run(context.Background(),
		[]string{"queues", "--redis", "redis://127.0.0.1:1?dial_timeout=200ms&max_retries=-1"}, nil, &out, &errb))
	require.Contains(t, errb.String(), "connection refused")
	out.Reset()
	require.Equal(t, exitOK, run(context.Background(), []string{"help"}, nil, &out, &errb))
	require.Contains(t, out.String(), "exit codes")
}

var urlRe = regexp.MustCompile(`open (http://[^ ]+/)`)

// serveCmd runs a serving command until it printed its URL, and returns the
// URL and a func that stops it and returns its exit code.
func serveCmd(t *testing.T, args ...string) (string, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, nil, out, io.Discard) }()
	deadline := time.Now().Add(10 * time.Second)
	for !urlRe.MatchString(out.String()) {
		select {
		case c := <-code:
			t.Fatalf("%v exited with %d: %s", args, c, out.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no URL printed: %s", out.String())
		time.Sleep(10 * time.Millisecond)
	}
	return urlRe.FindStringSubmatch(out.String())[1], func() int {
		cancel()
		select {
		case c := <-code:
			return c
		case <-time.After(15 * time.Second):
			t.Fatal("the command did not stop")
			return -1
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestDemoCommand(t *testing.T) {
	t.Parallel()
	// --redis "": the embedded Redis whatever $REDIS_URL says.
	url, stop := serveCmd(t, "demo", "--redis", "", "--addr", "127.0.0.1:0", "--interval", "100ms")
	body := get(t, url)
	for _, q := range []string{"emails", "exports", "webhooks"} {
		require.Contains(t, body, `href="./queues/`+q+`"`)
	}
	require.Equal(t, exitOK, stop())
	var out, errb bytes.Buffer
	require.Equal(t, exitUsage, run(context.Background(), []string{"demo", "--addr", "0.0.0.0:0"}, nil, &out, &errb))
}

func TestDashboardCommand(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "cli", func(t *testing.T, b *redistest.Backend) {
		seed(t, b)
		url, stop := serveCmd(t, "dashboard", "--redis", backendURL(b), "--prefix", b.Prefix, "--addr", "127.0.0.1:0")
		require.Contains(t, get(t, url), `href="./queues/mail"`)
		require.Equal(t, exitOK, stop())

		url, stop = serveCmd(t, "dashboard", "--redis", backendURL(b), "--prefix", b.Prefix, "--addr", "127.0.0.1:0",
			"--user", "ops", "--password", "pw")
		resp, err := http.Get(url)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("ops", "pw")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, exitOK, stop())

		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"dashboard", "--redis", backendURL(b), "--addr", "0.0.0.0:0"}, nil, &out, &errb)
		require.Equal(t, exitUsage, code, "no auth on a public address")
		require.Contains(t, errb.String(), "not a loopback address")
	})
}
