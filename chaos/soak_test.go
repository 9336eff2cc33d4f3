//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/faultproxy"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// defaultSoak is the soak's length in CI; HOPPER_SOAK (a Go duration) sets
// another, HOPPER_SOAK_SEED replays a fault sequence.
const defaultSoak = 3 * time.Minute

// soakSlot is one worker process and the fault proxy it reaches Redis by.
type soakSlot struct {
	name  string
	proxy *faultproxy.Proxy
	w     *worker
	runs  int // restarts so far
}

// Soak: a seeded random sequence of faults — SIGKILL a worker (1), SIGSTOP
// one for 3× the lease (2), SIGKILL Redis with appendfsync always and
// restart it (5), partition a worker for 3× the lease (9), CLIENT PAUSE
// WRITE (11), a connection reset or CLIENT KILL (17) — under a steady
// producer, for HOPPER_SOAK (3 minutes by default). Passes when I1–I5 hold
// over every acknowledged add: none lost, none completed twice, no run
// beyond the first unexplained by a fault or a retry.
func TestSoak(t *testing.T) {
	length := defaultSoak
	if v := os.Getenv("HOPPER_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "HOPPER_SOAK")
		length = d
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOPPER_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "HOPPER_SOAK_SEED")
		seed = s
	}
	t.Logf("soak for %s, seed %d (HOPPER_SOAK_SEED=%d replays the fault sequence)", length, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ctx := context.Background()

	r := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	prefix := newPrefix(t.Name())
	history := filepath.Join(t.TempDir(), "history.jsonl")
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 2 * time.Second})
	defer c.Close()
	admin := redis.NewClient(&redis.Options{Addr: r.addr(), DialTimeout: 200 * time.Millisecond})
	defer admin.Close()
	q, err := hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: prefix, KeepCompleted: &hopper.Retention{Count: 1_000_000}})
	require.NoError(t, err)

	slots := make([]*soakSlot, 3)
	start := func(s *soakSlot) {
		spec := workerSpec{Addr: s.proxy.Addr(), Prefix: prefix, Queue: "work", Concurrency: 4, Lease: lease, Poll: poll,
			Shutdown: 10 * time.Second, History: history, Name: fmt.Sprint(s.name, "-", s.runs)}
		s.w = startWorker(t, spec)
		s.runs++
	}
	for i := range slots {
		p, err := faultproxy.New(r.addr())
		require.NoError(t, err)
		defer p.Close()
		slots[i] = &soakSlot{name: fmt.Sprint("w", i), proxy: p}
		start(slots[i])
	}

	// ~100 jobs/s: 12 slots drain ~200/s.
	prod := startProducer(q, "s", 100, 8*time.Millisecond, 50*time.Millisecond)

	var windows []faultWindow
	kinds := map[string]int{}
	end := time.Now().Add(length)
	for time.Now().Before(end) {
		time.Sleep(time.Second + time.Duration(rng.IntN(2000))*time.Millisecond)
		s := slots[rng.IntN(len(slots))]
		pid := s.w.cmd.Process.Pid
		from := time.Now()
		switch k := rng.IntN(6); k {
		case 0: // 1. SIGKILL a worker, restart it
			kinds["kill worker"]++
			s.w.signal(syscall.SIGKILL)
			<-s.w.done
			start(s)
		case 1: // 2. SIGSTOP a worker for 3x the lease
			kinds["stop worker"]++
			s.w.signal(syscall.SIGSTOP)
			time.Sleep(3 * lease)
			s.w.signal(syscall.SIGCONT)
		case 2: // 5. SIGKILL Redis (AOF always) and restart it on its port
			kinds["kill redis"]++
			pid = 0
			r.kill()
			time.Sleep(300 * time.Millisecond)
			r.start()
		case 3: // 9. partition a worker for 3x the lease
			kinds["partition worker"]++
			s.proxy.Hold()
			time.Sleep(3 * lease)
			s.proxy.Heal()
		case 4: // 11. CLIENT PAUSE WRITE
			kinds["pause writes"]++
			pid = 0
			require.NoError(t, admin.Do(ctx, "CLIENT", "PAUSE", "1000", "WRITE").Err())
			time.Sleep(time.Second)
		case 5: // 17. connection loss: a proxy reset, or CLIENT KILL of all clients
			if rng.IntN(2) == 0 {
				kinds["reset connections"]++
				s.proxy.Reset()
			} else {
				kinds["client kill"]++
				pid = 0
				require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err())
			}
		}
		windows = append(windows, faultWindow{PID: pid, From: from, To: time.Now()})
	}
	prod.finish()
	t.Logf("faults: %v; %d adds acknowledged of %d attempted", kinds, len(prod.acked), len(prod.attempted))

	waitFor(t, 60*time.Second, "quiescence", func() bool {
		cnt, err := q.Counts(ctx)
		return err == nil && cnt.Waiting+cnt.Active+cnt.Delayed+cnt.Failed == 0
	})
	// Adds that returned an error may have landed: then they count as added.
	all := append(slices.Clone(prod.acked), prod.landed(t, q, nil)...)
	o := collect(t, q, all, history, nil)
	o.windows = windows
	runs := len(o.starts)
	t.Logf("%d jobs, %d runs (%d beyond the first of each), %d completed, %d dead", len(all), runs, runs-len(all),
		o.counts.Completed, o.counts.Dead)
	bad := check(o)
	if len(bad) > 0 {
		// The history of each job named, and the faults on its processes.
		b, _ := os.ReadFile(history)
		for _, v := range bad {
			f := strings.Fields(v)
			if len(f) < 3 || f[1] != "job" {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, `"`+f[2]+`"`) {
					t.Logf("%s: %s", f[2], l)
				}
			}
		}
		for _, w := range windows {
			t.Logf("fault window pid %d %s .. %s", w.PID, w.From.Format("15:04:05.000"), w.To.Format("15:04:05.000"))
		}
	}
	require.Empty(t, bad, "seed %d", seed)
}
