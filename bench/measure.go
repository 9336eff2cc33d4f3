package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// rtHook counts round trips through a go-redis client: one per command sent
// on its own and one per pipeline (however many commands it carries). It also
// counts commands, pipelined ones individually.
type rtHook struct {
	trips *atomic.Int64
	cmds  *atomic.Int64
	// skip names commands not to count (the harness' own INFO calls).
	skip string
}

func newRTHook() rtHook { return rtHook{trips: new(atomic.Int64), cmds: new(atomic.Int64)} }

func (rtHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h rtHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.skip == "" || cmd.Name() != h.skip {
			h.trips.Add(1)
			h.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h rtHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		h.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// serverStats is what one INFO call tells about the Redis server.
type serverStats struct {
	cpu        float64 // used_cpu_user + used_cpu_sys, seconds
	calls      int64   // commandstats calls, all commands but INFO
	usedMemory int64
}

// readStats reads CPU, command and memory statistics in one INFO call.
func readStats(ctx context.Context, c *redis.Client) (serverStats, error) {
	txt, err := c.Info(ctx, "cpu", "commandstats", "memory").Result()
	if err != nil {
		return serverStats{}, fmt.Errorf("INFO: %w", err)
	}
	var s serverStats
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s, fmt.Errorf("INFO %s: %w", k, err)
			}
			s.cpu += f
		case k == "used_memory":
			s.usedMemory, err = strconv.ParseInt(v, 10, 64)
			if err != nil {
				return s, fmt.Errorf("INFO %s: %w", k, err)
			}
		case strings.HasPrefix(k, "cmdstat_"):
			if k == "cmdstat_info" {
				continue
			}
			for _, f := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(f, "calls="); ok {
					calls, err := strconv.ParseInt(n, 10, 64)
					if err != nil {
						return s, fmt.Errorf("INFO %s: %w", k, err)
					}
					s.calls += calls
				}
			}
		}
	}
	return s, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// snapshot is the state of every counter at one instant.
type snapshot struct {
	at     time.Time
	server serverStats
	trips  int64 // round trips of the system under test (hook)
	admin  int64 // commands the harness sent (INFO excluded)
	client time.Duration
}

// meter measures one window of a scenario.
type meter struct {
	e     *env
	s     system
	start snapshot
}

// window is what happened between two snapshots.
type window struct {
	elapsed   time.Duration
	redisCPU  time.Duration
	calls     int64 // commands Redis executed for the system (incl. inside Lua), harness excluded
	trips     int64
	clientCPU time.Duration
}

func (e *env) snap(ctx context.Context, s system) (snapshot, error) {
	st, err := readStats(ctx, e.admin)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{at: time.Now(), server: st, trips: s.RoundTrips(), admin: e.adminHook.cmds.Load(), client: selfCPU()}, nil
}

func (e *env) begin(ctx context.Context, s system) (*meter, error) {
	sn, err := e.snap(ctx, s)
	if err != nil {
		return nil, err
	}
	return &meter{e: e, s: s, start: sn}, nil
}

func (m *meter) end(ctx context.Context) (window, error) {
	sn, err := m.e.snap(ctx, m.s)
	if err != nil {
		return window{}, err
	}
	a := m.start
	calls := sn.server.calls - a.server.calls - (sn.admin - a.admin)
	return window{
		elapsed:   sn.at.Sub(a.at),
		redisCPU:  time.Duration((sn.server.cpu - a.server.cpu) * float64(time.Second)),
		calls:     max(calls, 0),
		trips:     sn.trips - a.trips,
		clientCPU: sn.client - a.client,
	}, nil
}

// perJob fills the per-job cost fields of r from w over n jobs.
func (w window) perJob(r *result, n int) {
	if n <= 0 {
		return
	}
	f := float64(n)
	r.RedisCPUUsPerJob = ptr(float64(w.redisCPU.Microseconds()) / f)
	r.RoundTripsPerJob = ptr(float64(w.trips) / f)
	r.RedisCmdsPerJob = ptr(float64(w.calls) / f)
	r.ClientCPUUsPerJob = ptr(float64(w.clientCPU.Microseconds()) / f)
}

func ptr(f float64) *float64 { return &f }
