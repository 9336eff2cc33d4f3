// Command hopper inspects and steers hopper queues, serves the dashboard,
// and runs a self-contained demo.
//
//	hopper demo                         live demo traffic + dashboard on localhost:8080
//	hopper dashboard --redis URL        the dashboard for your queues
//	hopper queues | stats Q | jobs Q | job Q ID | events Q ...
//
// Run `hopper help` for every command, its flags and the exit codes.
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
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redisurl"
	"github.com/redis/go-redis/v9"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // Redis or another runtime failure
	exitUsage    = 2 // bad command line, or a destructive command refused without --yes
	exitNotFound = 3 // no such job, queue or schedule
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is one invocation: its I/O, global flags and Redis client.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	redisURL       string
	prefix         string
	json           bool
	yes            bool
	client         redis.UniversalClient

	// Command flags.
	state, from, addr, user, password string
	page, limit                       int
	force, delayed, follow            bool
	readOnly, noAuth                  bool
	olderThan, interval               time.Duration
}

// usageError is a bad command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// command is one sub-command: its flags (beside the global ones), its
// positional arguments and what it does.
type command struct {
	name, args, help string
	destructive      bool
	flags            func(fs *flag.FlagSet, e *env)
	run              func(e *env, pos []string) error
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(stdout)
		return exitOK
	}
	name := args[0]
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "hopper: unknown command %q (see hopper help)\n", name)
		return exitUsage
	}
	fs := flag.NewFlagSet("hopper "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.redisURL, "redis", os.Getenv("REDIS_URL"), "Redis URL (default $REDIS_URL, else redis://127.0.0.1:6379)")
	fs.StringVar(&e.prefix, "prefix", hopper.DefaultPrefix, "hopper key prefix")
	fs.BoolVar(&e.json, "json", false, "print JSON")
	if cmd.destructive {
		fs.BoolVar(&e.yes, "yes", false, "do not ask for confirmation")
	}
	if cmd.flags != nil {
		cmd.flags(fs, e)
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err == nil {
		if want := strings.Count(cmd.args, " ") + 1; cmd.args != "" && len(pos) != want && !strings.HasSuffix(cmd.args, "...") {
			err = usagef("%s takes %s", name, cmd.args)
		} else if cmd.args == "" && len(pos) > 0 {
			err = usagef("%s takes no arguments", name)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "hopper %s: %v\nusage: hopper %s %s\n", name, err, name, cmd.args)
		return exitUsage
	}
	if name != "demo" {
		if e.redisURL == "" {
			e.redisURL = "redis://127.0.0.1:6379"
		}
		if e.client, err = redisurl.Client(e.redisURL); err != nil {
			fmt.Fprintf(stderr, "hopper: %v\n", err)
			return exitUsage
		}
		defer e.client.Close()
	}
	if err := cmd.run(e, pos); err != nil {
		return report(stderr, err)
	}
	return exitOK
}

// report prints err and maps it to an exit code.
func report(stderr io.Writer, err error) int {
	var u usageError
	switch {
	case errors.As(err, &u):
		fmt.Fprintf(stderr, "hopper: %v\n", err)
		return exitUsage
	case errors.Is(err, hopper.ErrInvalid):
		fmt.Fprintf(stderr, "hopper: %v\n", err)
		return exitUsage
	case errors.Is(err, hopper.ErrJobNotFound), errors.Is(err, hopper.ErrScheduleNotFound), errors.Is(err, errQueueNotFound):
		fmt.Fprintf(stderr, "hopper: %v\n", err)
		return exitNotFound
	case errors.Is(err, context.Canceled):
		return exitOK // interrupted (Ctrl-C) while serving or following
	}
	fmt.Fprintf(stderr, "hopper: %v\n", err)
	return exitError
}

// parseInterleaved parses flags placed before, between or after the
// positional arguments ("jobs emails --state dead").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// confirm asks before a destructive command: --yes skips it; on a terminal
// the user must type "yes"; otherwise it refuses.
func (e *env) confirm(what string) error {
	if e.yes {
		return nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return usagef("%s: refusing without --yes (stdin is not a terminal)", what)
	}
	fmt.Fprintf(e.stderr, "%s? Type yes to confirm: ", what)
	var answer string
	_, _ = fmt.Fscanln(e.stdin, &answer)
	if answer != "yes" {
		return usagef("%s: not confirmed", what)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// out prints v as JSON with --json, else calls table with a tabwriter.
func (e *env) out(v any, table func(w io.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// done prints the result of an action.
func (e *env) done(v map[string]any, text string) error {
	return e.out(v, func(w io.Writer) { fmt.Fprintln(w, text) })
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `hopper: inspect and steer hopper job queues.

usage: hopper COMMAND [ARGS] [FLAGS]

commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.help)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
flags of every command:
  --redis URL    Redis URL (default $REDIS_URL, else redis://127.0.0.1:6379):
                 redis://[user:pass@]host:port[/db], rediss://... for TLS,
                 redis://h1:p1,h2:p2,h3:p3 for a Redis Cluster
  --prefix P     hopper key prefix (default "hopper")
  --json         print JSON instead of tables
  --yes          (destructive commands) do not ask for confirmation; required
                 when stdin is not a terminal

exit codes: 0 ok, 1 error (e.g. Redis unreachable), 2 usage error or refused,
3 not found (job, queue or schedule).
`)
}
