//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestMain runs the binary as a worker process when HOPPER_CHAOS_WORKER is
// set (see workerMain), else as the test suite.
func TestMain(m *testing.M) {
	if os.Getenv("HOPPER_CHAOS_WORKER") != "" {
		os.Exit(workerMain())
	}
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// ---- redis-server processes ----

// redisProc is a redis-server the test started, on a loopback port of its
// own, stopped by PID when the test ends.
type redisProc struct {
	t    *testing.T
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts a redis-server with extra config args.
func startRedis(t *testing.T, args ...string) *redisProc {
	t.Helper()
	r := &redisProc{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	r.start()
	t.Cleanup(func() { r.kill() })
	return r
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisProc) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	require.NoError(r.t, r.cmd.Start())
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		require.True(r.t, time.Now().Before(deadline), "redis-server on %d did not start", r.port)
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisProc) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_, _ = r.cmd.Process.Wait()
		r.cmd = nil
	}
}

// ---- worker processes ----

// workerSpec configures a worker process.
type workerSpec struct {
	Addr        string        `json:"addr"`
	Prefix      string        `json:"prefix"`
	Queue       string        `json:"queue"`
	Concurrency int           `json:"concurrency"`
	Lease       time.Duration `json:"lease"`
	Poll        time.Duration `json:"poll"`
	Shutdown    time.Duration `json:"shutdown"` // budget of the graceful shutdown on SIGTERM
	History     string        `json:"history"`
	Name        string        `json:"name"`
	// Keep, if set, is a schedule key the worker keeps registered
	// (KeepSchedule): every second it enqueues a 0-ms sleep job.
	Keep string `json:"keep,omitempty"`
}

// worker is a running worker process.
type worker struct {
	t    *testing.T
	spec workerSpec
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

func startWorker(t *testing.T, spec workerSpec) *worker {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOPPER_CHAOS_WORKER="+string(b))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	w := &worker{t: t, spec: spec, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-w.done
	})
	return w
}

func (w *worker) signal(s syscall.Signal) { _ = w.cmd.Process.Signal(s) }

// historyLine is one attempt as a worker process recorded it when the
// attempt ended.
type historyLine struct {
	Job      string    `json:"job"`
	Attempt  int       `json:"attempt"` // 1 = first
	Stalls   int       `json:"stalls"`  // stalls before this attempt
	PID      int       `json:"pid"`
	Worker   string    `json:"worker"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	State    string    `json:"state"`    // the state the attempt left the job in
	Recorded bool      `json:"recorded"` // the outcome was written (the lease held)
	Unknown  bool      `json:"unknown"`  // the write failed and may have landed
	Err      string    `json:"err,omitempty"`
}

// returnLine is written when a handler returns nil, before the worker
// acknowledges the completion.
type returnLine struct {
	Job string `json:"job"`
	PID int    `json:"pid"`
}

// startLine is written when an attempt starts (ends may be lost to a kill).
type startLine struct {
	Job     string    `json:"job"`
	Started time.Time `json:"started"`
	PID     int       `json:"pid"`
	Worker  string    `json:"worker"`
	Stalls  int       `json:"stalls"`
}

// historyWriter appends one JSON line per write; O_APPEND makes concurrent
// writers (several processes) safe line by line.
type historyWriter struct {
	mu sync.Mutex
	f  *os.File
}

func (h *historyWriter) write(v any) {
	b, _ := json.Marshal(v)
	h.mu.Lock()
	defer h.mu.Unlock()
	_, _ = h.f.Write(append(b, '\n'))
}

// observer records every attempt's start and end in the history.
type observer struct {
	h    *historyWriter
	name string
}

func (o observer) JobStarted(_ context.Context, j *hopper.Job) {
	o.h.write(map[string]any{"start": startLine{Job: j.ID, Started: time.Now(), PID: os.Getpid(), Worker: o.name, Stalls: j.Stalls}})
}

func (o observer) JobFinished(_ context.Context, j *hopper.Job, out hopper.Outcome) {
	l := historyLine{Job: j.ID, Attempt: j.AttemptsMade, Stalls: j.Stalls, PID: os.Getpid(), Worker: o.name,
		End: time.Now(), State: string(out.State), Recorded: out.Recorded, Unknown: out.RecordErr != nil}
	l.Start = l.End.Add(-out.Duration)
	if out.Err != nil {
		l.Err = out.Err.Error()
	}
	o.h.write(map[string]any{"end": l})
}

// workerMain is a worker process: its handler sleeps for the payload's
// "ms" milliseconds (honouring ctx), or kills its own process on
// "kill": true; SIGTERM shuts it down gracefully within spec.Shutdown.
func workerMain() int {
	var spec workerSpec
	if err := json.Unmarshal([]byte(os.Getenv("HOPPER_CHAOS_WORKER")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "chaos worker:", err)
		return 2
	}
	f, err := os.OpenFile(spec.History, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos worker:", err)
		return 2
	}
	defer f.Close()
	hw := &historyWriter{f: f}
	client := redis.NewClient(&redis.Options{Addr: spec.Addr})
	defer client.Close()
	handler := hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		var p struct {
			MS     int  `json:"ms"`
			Kill   bool `json:"kill"`   // a poison pill: the process SIGKILLs itself
			Panic  bool `json:"panic"`  // the handler panics
			Ignore bool `json:"ignore"` // the handler sleeps ms ignoring its ctx
		}
		_ = json.Unmarshal(j.Payload, &p)
		switch {
		case p.Kill:
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // dies here
		case p.Panic:
			panic("poisoned payload")
		case p.Ignore:
			time.Sleep(time.Duration(p.MS) * time.Millisecond) // a handler that ignores its ctx, on purpose
			return nil
		}
		t := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			// Written before the worker acknowledges: a process killed
			// between its ack landing and its end line leaves this trace.
			hw.write(map[string]any{"returned": returnLine{Job: j.ID, PID: os.Getpid()}})
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	w, err := hopper.NewWorker(client, spec.Queue, handler, &hopper.WorkerConfig{
		Prefix: spec.Prefix, Concurrency: spec.Concurrency, LeaseDuration: spec.Lease, PollInterval: spec.Poll,
		ShutdownTimeout: spec.Shutdown, Observer: observer{hw, spec.Name},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos worker:", err)
		return 2
	}
	if spec.Keep != "" {
		q, err := hopper.NewQueue(client, spec.Queue, &hopper.QueueConfig{Prefix: spec.Prefix})
		if err == nil {
			err = w.KeepSchedule(q, spec.Keep, "@every 1s", "sleep", []byte(`{"ms":0}`), nil)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos worker:", err)
			return 2
		}
	}
	// SIGUSR1 asks for the process's goroutine count (a leak check).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			hw.write(map[string]any{"goroutines": goroutineLine{PID: os.Getpid(), N: runtime.NumGoroutine(), At: time.Now()}})
		}
	}()
	hw.write(map[string]any{"ready": os.Getpid()})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chaos worker:", err)
		return 1
	}
	return 0
}

// goroutineLine is a worker process's goroutine count, written on SIGUSR1.
type goroutineLine struct {
	PID int       `json:"pid"`
	N   int       `json:"n"`
	At  time.Time `json:"at"`
}

// goroutines sends w SIGUSR1 and returns the goroutine count it reports.
func (w *worker) goroutines(t *testing.T) int {
	t.Helper()
	pid := w.cmd.Process.Pid
	waitFor(t, 10*time.Second, "the worker process is ready", func() bool { return slices.Contains(readLines[int](t, w.spec.History, "ready"), pid) })
	sent := time.Now()
	w.signal(syscall.SIGUSR1)
	var n int
	waitFor(t, 5*time.Second, "the goroutine count", func() bool {
		for _, g := range readLines[goroutineLine](t, w.spec.History, "goroutines") {
			if g.PID == pid && !g.At.Before(sent) {
				n = g.N
				return true
			}
		}
		return false
	})
	return n
}

// readLines returns the values of the history lines of one kind.
func readLines[T any](t *testing.T, path, kind string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []T
	for _, l := range strings.Split(string(b), "\n") {
		var rec map[string]json.RawMessage
		if json.Unmarshal([]byte(l), &rec) != nil || rec[kind] == nil {
			continue
		}
		var v T
		if json.Unmarshal(rec[kind], &v) == nil {
			out = append(out, v)
		}
	}
	return out
}

// readHistory parses a history file into starts and ends.
func readHistory(t *testing.T, path string) ([]startLine, []historyLine) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	require.NoError(t, err)
	defer f.Close()
	var starts []startLine
	var ends []historyLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Start *startLine   `json:"start"`
			End   *historyLine `json:"end"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			continue // a line torn by a SIGKILL mid-write
		}
		if rec.Start != nil {
			starts = append(starts, *rec.Start)
		}
		if rec.End != nil {
			ends = append(ends, *rec.End)
		}
	}
	require.NoError(t, sc.Err())
	return starts, ends
}

// ---- helpers ----

func newPrefix(name string) string {
	return "chaos" + strings.ReplaceAll(name, "/", "-") + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out after %s waiting for %s", timeout, what)
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- producer ----

// producer adds "sleep" jobs in a loop until finish, recording every Add
// and its outcome. Its fields are written by its goroutine only; read them
// after finish.
type producer struct {
	stop, done chan struct{}
	attempted  []string             // every ID tried, in order
	acked      []string             // IDs whose Add returned nil, in order
	ackedAt    map[string]time.Time // when each of those returned
	failed     map[string]error     // IDs whose Add returned an error
}

// startProducer adds jobs with IDs prefix000000, prefix000001, ... whose
// handlers sleep up to maxMS milliseconds, pausing pace after an
// acknowledged add (to keep the backlog bounded on a slow machine) and
// backoff after a failed one (Redis down or paused).
func startProducer(q *hopper.Queue, prefix string, maxMS int, pace, backoff time.Duration) *producer {
	p := &producer{stop: make(chan struct{}), done: make(chan struct{}),
		ackedAt: map[string]time.Time{}, failed: map[string]error{}}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			id := fmt.Sprintf("%s%06d", prefix, i)
			p.attempted = append(p.attempted, id)
			_, err := q.Add(context.Background(), "sleep", []byte(fmt.Sprintf(`{"ms":%d}`, rand.IntN(maxMS))), &hopper.JobOptions{ID: id})
			if err == nil {
				p.acked = append(p.acked, id)
				p.ackedAt[id] = time.Now()
				time.Sleep(pace)
			} else {
				p.failed[id] = err
				time.Sleep(backoff)
			}
		}
	}()
	return p
}

// finish stops the producer and waits for its last Add.
func (p *producer) finish() {
	close(p.stop)
	<-p.done
}

// landed returns the IDs whose Add failed but whose job exists in q (the
// write landed, the reply did not): they count as added. IDs in skip are
// left out.
func (p *producer) landed(t *testing.T, q *hopper.Queue, skip map[string]time.Time) []string {
	t.Helper()
	var out []string
	for _, id := range p.attempted {
		if _, ok := p.failed[id]; !ok {
			continue
		}
		if _, ok := skip[id]; ok {
			continue
		}
		_, err := q.Job(context.Background(), id)
		if err == nil {
			out = append(out, id)
		} else {
			require.ErrorIs(t, err, hopper.ErrJobNotFound)
		}
	}
	return out
}
