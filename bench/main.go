// Command bench compares hopper with asynq on one Redis server: enqueue and
// processing throughput, Redis CPU and round trips per job, pickup latency,
// delayed and retried jobs, memory per job and the cost of an idle worker.
// See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

type config struct {
	addr      string
	db        int
	systems   []string
	scenarios []scenario
	runs      int
	n         int // > 0: overrides every scenario's job count
	short     bool
	jsonPath  string
}

// warmUpJobs is the job count of the untimed warm-up runs.
const warmUpJobs = 5000

// env is what scenarios share within one invocation.
type env struct {
	cfg       config
	admin     *redis.Client // the harness' own client: INFO, FLUSHDB, counts
	adminHook rtHook
	rev       string
	jsonOut   io.Writer
}

func (e *env) settle() time.Duration {
	if e.cfg.short {
		return 300 * time.Millisecond
	}
	return time.Second
}

func (e *env) count(sc scenario) int {
	switch {
	case sc.count == 0:
		return 0
	case e.cfg.n > 0:
		return e.cfg.n
	case e.cfg.short:
		return sc.short
	}
	return sc.count
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg config
	var systems, scens string
	fs.StringVar(&cfg.addr, "redis", "127.0.0.1:6379", "Redis server address")
	fs.IntVar(&cfg.db, "db", 15, "Redis database to use; it is FLUSHDB-ed before every run")
	fs.StringVar(&systems, "systems", "hopper,asynq", "comma-separated systems: hopper, hopper-noevents (its event stream off), asynq")
	fs.StringVar(&scens, "scenarios", "all", "comma-separated scenarios, or all: "+strings.Join(scenarioNames(), ","))
	fs.IntVar(&cfg.runs, "runs", 3, "runs per scenario and system")
	fs.IntVar(&cfg.n, "n", 0, "job count for every scenario (0: each scenario's default)")
	fs.BoolVar(&cfg.short, "short", false, "smoke mode: small job counts and short durations")
	fs.StringVar(&cfg.jsonPath, "json", "", "append one JSON object per (scenario, system, run) to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(systems, ",") {
		s = strings.TrimSpace(s)
		if s != "hopper" && s != "asynq" && s != "hopper-noevents" {
			return cfg, fmt.Errorf("-systems: unknown system %q (want hopper, hopper-noevents, asynq)", s)
		}
		cfg.systems = append(cfg.systems, s)
	}
	var err error
	if cfg.scenarios, err = pickScenarios(scens); err != nil {
		return cfg, err
	}
	if cfg.runs < 1 {
		return cfg, fmt.Errorf("-runs must be at least 1")
	}
	if cfg.n < 0 {
		return cfg, fmt.Errorf("-n must not be negative")
	}
	return cfg, nil
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

func pickScenarios(list string) ([]scenario, error) {
	if list == "all" {
		return scenarios, nil
	}
	var out []scenario
next:
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		for _, s := range scenarios {
			if s.name == name {
				out = append(out, s)
				continue next
			}
		}
		return nil, fmt.Errorf("-scenarios: unknown scenario %q (want all or some of %s)", name, strings.Join(scenarioNames(), ","))
	}
	return out, nil
}

// run runs every scenario for every system, interleaving the systems run by
// run (their order alternates), and prints the header and table to out and
// progress to logw. It returns an error if any run failed.
func run(ctx context.Context, cfg config, out, logw io.Writer) error {
	e := &env{cfg: cfg, adminHook: newRTHook()}
	e.adminHook.skip = "info"
	e.admin = redis.NewClient(&redis.Options{Addr: cfg.addr, DB: cfg.db})
	e.admin.AddHook(e.adminHook)
	defer e.admin.Close()
	if err := e.admin.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", cfg.addr, err)
	}
	h, err := readHeader(ctx, e)
	if err != nil {
		return err
	}
	e.rev = h.hopperRev
	h.print(out, cfg)
	if cfg.jsonPath != "" {
		f, err := os.OpenFile(cfg.jsonPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		e.jsonOut = f
	}

	if !cfg.short {
		// Untimed warm-up: connections, script caches, Redis' and this
		// process' heaps. Without it the first run of each system is slower.
		for _, sys := range cfg.systems {
			for _, sc := range []scenario{{name: "warm-up enqueue", run: enqueueSeq}, {name: "warm-up process", run: process(10)}} {
				if _, err := e.runOne(ctx, sc, sys, 0, warmUpJobs); err != nil {
					return fmt.Errorf("%s %s: %w", sc.name, sys, err)
				}
			}
		}
	}
	var failures []error
	all := map[string][]*result{} // scenario/system -> runs
	for _, sc := range cfg.scenarios {
		n := e.count(sc)
		for runNo := 1; runNo <= cfg.runs; runNo++ {
			for k := range cfg.systems {
				// Alternate the order of the systems from run to run.
				sys := cfg.systems[(k+runNo-1)%len(cfg.systems)]
				r, err := e.runOne(ctx, sc, sys, runNo, n)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					err = fmt.Errorf("%s %s run %d: %w", sc.name, sys, runNo, err)
					fmt.Fprintln(logw, "FAIL", err)
					failures = append(failures, err)
					continue
				}
				fmt.Fprintf(logw, "%-12s %-6s run %d: %s\n", sc.name, sys, runNo, r.brief())
				all[sc.name+"/"+sys] = append(all[sc.name+"/"+sys], r)
				if e.jsonOut != nil {
					b, _ := json.Marshal(r)
					if _, err := fmt.Fprintf(e.jsonOut, "%s\n", b); err != nil {
						return err
					}
				}
			}
		}
	}
	printTable(out, cfg, e, all)
	printTargets(out, cfg, all)
	return errors.Join(failures...)
}

// runOne runs one scenario once for one system on a flushed database.
func (e *env) runOne(ctx context.Context, sc scenario, sysName string, runNo, n int) (r *result, err error) {
	if err := e.admin.FlushDB(ctx).Err(); err != nil {
		return nil, fmt.Errorf("FLUSHDB: %w", err)
	}
	time.Sleep(e.settle() / 5) // let the flush's freeing settle before measuring
	s, err := newSystem(sysName, e, sc.opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	r, err = sc.run(ctx, e, s, n)
	if err != nil {
		return nil, err
	}
	r.Scenario, r.System, r.Run, r.N = sc.name, sysName, runNo, n
	r.HopperRev, r.Time = e.rev, time.Now().UTC().Format(time.RFC3339)
	return r, nil
}
