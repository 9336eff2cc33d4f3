//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/faultproxy"
	"github.com/hopperq/hopper/internal/syncbuf"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.DiscardHandler)

// inProcWorker runs a hopper worker in this process until the test ends.
func inProcWorker(t *testing.T, c redis.UniversalClient, prefix string, h hopper.Handler, cfg hopper.WorkerConfig) *hopper.Worker {
	t.Helper()
	cfg.Prefix, cfg.Logger = prefix, quiet
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration, cfg.PollInterval = lease, poll
	}
	w, err := hopper.NewWorker(c, "work", h, &cfg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
		<-done
	})
	return w
}

// counter is a handler that counts completions.
type counter struct{ n atomic.Int64 }

func (c *counter) ProcessJob(context.Context, *hopper.Job) error { c.n.Add(1); return nil }

// 8. A slow server: DEBUG SLEEP 2 while an Add with a 500 ms read timeout
// (and go-redis' default retries) runs. The caller gets an error or a
// success, never two jobs; adding the same ID again afterwards yields one.
func TestSlowServerAddIsSafe(t *testing.T) {
	r := startRedis(t, "--enable-debug-command", "local")
	prefix := newPrefix(t.Name())
	c := redis.NewClient(&redis.Options{Addr: r.addr(), ReadTimeout: 500 * time.Millisecond})
	defer c.Close()
	admin := redis.NewClient(&redis.Options{Addr: r.addr(), ReadTimeout: 10 * time.Second})
	defer admin.Close()
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = q.Add(ctx, "warm", nil, nil) // load the script first
	require.NoError(t, err)

	slept := make(chan error, 1)
	go func() { slept <- admin.Do(ctx, "DEBUG", "SLEEP", "2").Err() }()
	time.Sleep(100 * time.Millisecond) // let the SLEEP reach the server first: it is the fault being injected
	start := time.Now()
	_, addErr := q.Add(ctx, "x", []byte("payload"), &hopper.JobOptions{ID: "once"})
	t.Logf("Add during DEBUG SLEEP 2 returned after %s: %v", time.Since(start).Round(time.Millisecond), addErr)
	require.NoError(t, <-slept)
	if addErr != nil {
		require.Contains(t, addErr.Error(), "hopper: add", "a clear error naming the operation")
	}
	j, err := q.Add(ctx, "x", []byte("payload"), &hopper.JobOptions{ID: "once"})
	require.NoError(t, err)
	require.Equal(t, "once", j.ID)
	cnt, err := q.Counts(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, cnt.Waiting, "the warm-up job and exactly one copy of job once")
}

// 17. A worker blocked waiting for work survives losing its connection —
// CLIENT KILL, the server's idle timeout, a server restart, a reset of
// every connection (proxy) — and picks up the next job within 2 s each time.
func TestBlockingFetchSurvivesConnectionLoss(t *testing.T) {
	r := startRedis(t)
	prefix := newPrefix(t.Name())
	px, err := faultproxy.New(r.addr())
	require.NoError(t, err)
	defer px.Close()
	c := redis.NewClient(&redis.Options{Addr: px.Addr()})
	defer c.Close()
	admin := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer admin.Close()
	q, err := hopper.NewQueue(admin, "work", &hopper.QueueConfig{Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()
	h := &counter{}
	inProcWorker(t, c, prefix, h, hopper.WorkerConfig{Concurrency: 2})

	pickup := func(what string) {
		t.Helper()
		before := h.n.Load()
		var start time.Time
		waitFor(t, 10*time.Second, "an add after "+what, func() bool {
			_, err := q.Add(ctx, "x", nil, nil)
			start = time.Now()
			return err == nil
		})
		waitFor(t, 2*time.Second, "the job after "+what+" is picked up", func() bool { return h.n.Load() > before })
		t.Logf("after %s: picked up %s after the add", what, time.Since(start).Round(time.Millisecond))
	}
	pickup("start")
	time.Sleep(300 * time.Millisecond) // the worker is back in its blocking read
	require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err())
	pickup("CLIENT KILL TYPE normal")

	require.NoError(t, admin.ConfigSet(ctx, "timeout", "1").Err())
	time.Sleep(2500 * time.Millisecond) // idle connections are closed by the server
	pickup("CONFIG SET timeout 1")
	require.NoError(t, admin.ConfigSet(ctx, "timeout", "0").Err())

	r.kill()
	r.start() // same port, no persistence: an empty server
	pickup("a Redis restart")

	time.Sleep(300 * time.Millisecond) // the worker is back in its blocking read
	px.Reset()                         // every connection through the proxy is reset
	pickup("a connection reset")
}

// 11. CLIENT PAUSE 3000 WRITE under load: no job fails because of it and
// completions resume within 1 s of the pause's end.
func TestClientPauseWrite(t *testing.T) {
	r := startRedis(t)
	prefix := newPrefix(t.Name())
	c := redis.NewClient(&redis.Options{Addr: r.addr(), ReadTimeout: 5 * time.Second})
	defer c.Close()
	admin := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer admin.Close()
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix, KeepCompleted: &hopper.Retention{Count: 1_000_000}})
	require.NoError(t, err)
	ctx := context.Background()
	var mu sync.Mutex
	var completions []time.Time
	inProcWorker(t, c, prefix, hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		time.Sleep(20 * time.Millisecond) // the work
		return nil
	}), hopper.WorkerConfig{Concurrency: 10, LeaseDuration: 10 * time.Second, PollInterval: poll,
		OnCompleted: func(context.Context, *hopper.Job) {
			mu.Lock()
			completions = append(completions, time.Now())
			mu.Unlock()
		}})
	const n = 3000
	jobs := make([]hopper.NewJob, n)
	for i := range jobs {
		jobs[i] = hopper.NewJob{Name: "x"}
	}
	_, err = q.AddBulk(ctx, jobs)
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "processing under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(completions) > 100
	})
	require.NoError(t, admin.Do(ctx, "CLIENT", "PAUSE", "3000", "WRITE").Err())
	pauseEnd := time.Now().Add(3 * time.Second)
	var last hopper.Counts
	deadline := time.Now().Add(60 * time.Second)
	for last.Completed != n {
		if time.Now().After(deadline) {
			t.Fatalf("not all done after the pause: %+v", last)
		}
		time.Sleep(50 * time.Millisecond)
		last, err = q.Counts(ctx)
		require.NoError(t, err)
	}
	cnt, err := q.Counts(ctx)
	require.NoError(t, err)
	require.Equal(t, hopper.Counts{Completed: n}, cnt, "no job failed, stalled or died because of the pause")
	mu.Lock()
	defer mu.Unlock()
	var first time.Time
	for _, at := range completions {
		if at.After(pauseEnd) {
			first = at
			break
		}
	}
	t.Logf("first completion %s after the pause ended", first.Sub(pauseEnd).Round(time.Millisecond))
	require.Less(t, first.Sub(pauseEnd), time.Second)
}

// 19. Payloads: 1 KiB and the maximum are accepted; max+1 is refused with
// ErrPayloadTooLarge before any command is sent; a max-size job whose
// handler outlives its lease keeps it through heartbeats (no stall).
func TestPayloadSizes(t *testing.T) {
	r := startRedis(t)
	prefix := newPrefix(t.Name())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	var cmds atomic.Int64
	c.AddHook(countHook{&cmds})
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = q.Add(ctx, "small", make([]byte, 1<<10), nil)
	require.NoError(t, err)
	big, err := q.Add(ctx, "big", make([]byte, hopper.DefaultMaxPayloadBytes), nil)
	require.NoError(t, err)
	before := cmds.Load()
	_, err = q.Add(ctx, "huge", make([]byte, hopper.DefaultMaxPayloadBytes+1), nil)
	require.ErrorIs(t, err, hopper.ErrPayloadTooLarge)
	require.Equal(t, before, cmds.Load(), "refused before any command was sent")

	inProcWorker(t, c, prefix, hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		if j.Name == "big" {
			time.Sleep(2 * lease) // longer than the lease: heartbeats must extend it
		}
		return nil
	}), hopper.WorkerConfig{Concurrency: 2})
	waitFor(t, 20*time.Second, "both done", func() bool {
		cnt, err := q.Counts(ctx)
		require.NoError(t, err)
		return cnt.Completed == 2
	})
	j, err := q.Job(ctx, big.ID)
	require.NoError(t, err)
	require.Zero(t, j.Stalls, "the 1 MiB job kept its lease")
	require.Len(t, j.Payload, hopper.DefaultMaxPayloadBytes)
}

// 20. Hostile names: queue names and job IDs with key syntax, glob
// characters, whitespace, NUL, invalid UTF-8, 10 KB, or internal suffixes
// are refused by the allow-lists (or are plain data), and no key outside
// the prefix is ever written.
func TestHostileNames(t *testing.T) {
	r := startRedis(t)
	prefix := newPrefix(t.Name())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	ctx := context.Background()
	hostile := []string{"a:b", "a{b}", "{x}", "a*", "a?", "a[b]", "a b", "a\nb", "a\x00b", "a\xffb",
		strings.Repeat("x", 10_000), "", "wait", "jobs", "*"}
	for _, name := range hostile {
		_, err := hopper.NewQueue(c, name, &hopper.QueueConfig{Prefix: prefix})
		if name == "wait" || name == "jobs" {
			require.NoError(t, err, "a queue named like a key part is fine: it sits in its own hash tag")
			continue
		}
		require.ErrorIs(t, err, hopper.ErrInvalid, "queue name %q", name)
	}
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix})
	require.NoError(t, err)
	for _, id := range hostile {
		_, err := q.Add(ctx, "x", nil, &hopper.JobOptions{ID: id})
		if id == "" || id == "wait" || id == "jobs" {
			continue // "" asks for a generated ID; the others are plain IDs
		}
		if strings.ContainsAny(id, "{}*?[] \n\x00") || !utf8.ValidString(id) || len(id) > 200 {
			require.ErrorIs(t, err, hopper.ErrInvalid, "job ID %q", id)
		}
	}
	_, err = q.Add(ctx, "x", nil, &hopper.JobOptions{ID: "a:b"})
	require.NoError(t, err, "':' is allowed in IDs: they are hash fields, not key names")
	for _, p := range []string{"a b", "a*", "{p}", ""} {
		_, err := hopper.ListQueues(ctx, c, p)
		if p != "" {
			require.ErrorIs(t, err, hopper.ErrInvalid, "prefix %q", p)
		}
	}
	_, err = hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: "evil*"})
	require.ErrorIs(t, err, hopper.ErrInvalid)

	keys, err := c.Keys(ctx, "*").Result() // the test's own server: KEYS is fine here
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		require.True(t, strings.HasPrefix(k, prefix+":"), "key %q is outside the prefix", k)
	}
}

// countHook counts commands sent through a client.
type countHook struct{ n *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// 12. maxmemory with noeviction: Add returns an error wrapping ErrRedisOOM
// and writes nothing; while still out of memory a worker drains the queue
// (claims, heartbeats and acks are written); adds work again once the limit
// is lifted.
func TestOutOfMemoryAdd(t *testing.T) {
	r := startRedis(t, "--maxmemory-policy", "noeviction")
	prefix := newPrefix(t.Name())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	ctx := context.Background()
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix})
	require.NoError(t, err)
	_, err = q.Add(ctx, "x", nil, nil)
	require.NoError(t, err)
	used, err := c.Info(ctx, "memory").Result()
	require.NoError(t, err)
	var mem int64
	for _, l := range strings.Split(used, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			_, _ = fmt.Sscan(v, &mem)
		}
	}
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", fmt.Sprint(mem+512<<10)).Err())
	payload := make([]byte, 64<<10)
	added := 1
	var oom error
	for range 100 {
		if _, err := q.Add(ctx, "x", payload, nil); err != nil {
			oom = err
			break
		}
		added++
	}
	require.ErrorIs(t, oom, hopper.ErrRedisOOM)
	require.Contains(t, oom.Error(), "OOM")
	cnt, err := q.Counts(ctx)
	require.NoError(t, err)
	require.EqualValues(t, added, cnt.Waiting, "the refused add wrote nothing")
	n, err := c.HLen(ctx, prefix+":{work}:jobs").Result()
	require.NoError(t, err)
	require.EqualValues(t, added, n, "no half-written job body")

	// Still out of memory, a worker drains the queue: claims, heartbeats and
	// acks are written (a script's first write deletes, and Redis lets a
	// script that has begun writing finish), so jobs complete and free
	// memory rather than pile up as stalls.
	var runs atomic.Int64
	w, err := hopper.NewWorker(c, "work", hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		if runs.Add(1)%4 == 1 {
			// Outlives the lease: only extensions written under OOM keep it.
			time.Sleep(1500 * time.Millisecond)
		}
		return nil
	}), &hopper.WorkerConfig{Prefix: prefix, Concurrency: 4, LeaseDuration: time.Second, PollInterval: poll, Logger: quiet})
	require.NoError(t, err)
	_, err = q.Add(ctx, "x", payload, nil)
	require.ErrorIs(t, err, hopper.ErrRedisOOM, "still out of memory when the worker starts")
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	waitFor(t, 30*time.Second, "every job acknowledged under OOM", func() bool {
		cnt, err := q.Counts(ctx)
		require.NoError(t, err)
		return cnt.Completed == int64(added) || cnt.Dead+cnt.Failed > 0
	})
	cnt, err = q.Counts(ctx)
	require.NoError(t, err)
	require.EqualValues(t, hopper.Counts{Completed: int64(added)}, cnt, "no retry, stall or dead job under OOM")
	require.EqualValues(t, added, runs.Load(), "each job ran once: heartbeats kept the long ones' leases")
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", "0").Err())
	_, err = q.Add(ctx, "x", payload, nil)
	require.NoError(t, err, "adds work again once the limit is lifted")
}

// 13. An evicting maxmemory-policy: a worker logs a loud error at start,
// and refuses to run with StrictEviction. With volatile-lru, nothing the
// queue needs has a TTL (only a worker's private wake-up key does).
func TestEvictingPolicy(t *testing.T) {
	r := startRedis(t, "--maxmemory-policy", "allkeys-lru")
	prefix := newPrefix(t.Name())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	ctx := context.Background()
	h := hopper.HandlerFunc(func(context.Context, *hopper.Job) error { return nil })

	strict, err := hopper.NewWorker(c, "work", h, &hopper.WorkerConfig{Prefix: prefix, Logger: quiet, StrictEviction: true})
	require.NoError(t, err)
	err = strict.Run(ctx)
	require.ErrorIs(t, err, hopper.ErrEvictingRedis)
	require.Contains(t, err.Error(), "allkeys-lru")

	logs := &syncbuf.Buffer{}
	w, err := hopper.NewWorker(c, "work", h, &hopper.WorkerConfig{Prefix: prefix, PollInterval: poll,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, 5*time.Second, "the warning", func() bool { return strings.Contains(logs.String(), "maxmemory-policy may evict keys") })
	require.Contains(t, logs.String(), "level=ERROR")

	// volatile-lru only evicts keys with a TTL: after a job's life, none of
	// the queue's keys has one.
	require.NoError(t, c.ConfigSet(ctx, "maxmemory-policy", "volatile-lru").Err())
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix})
	require.NoError(t, err)
	j, err := q.Add(ctx, "x", nil, &hopper.JobOptions{Unique: &hopper.Unique{Key: "u", Window: time.Hour}})
	require.NoError(t, err)
	_, err = q.Wait(ctx, j.ID)
	require.NoError(t, err)
	_, err = q.UpsertSchedule(ctx, "s", "@every 1h", "x", nil, nil)
	require.NoError(t, err)
	keys, err := c.Keys(ctx, prefix+":*").Result() // the test's own server
	require.NoError(t, err)
	for _, k := range keys {
		ttl, err := c.PTTL(ctx, k).Result()
		require.NoError(t, err)
		if strings.Contains(k, ":wake:") {
			continue // a worker's private wake-up key: losing it only delays a shutdown wake-up
		}
		require.Equal(t, time.Duration(-1), ttl, "key %s has a TTL", k)
	}
	require.NoError(t, w.Close())
	require.NoError(t, <-done)
}
