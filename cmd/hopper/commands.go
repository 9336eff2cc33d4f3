package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hopperq/hopper"
)

// errQueueNotFound: the queue is not in the prefix's registry.
var errQueueNotFound = errors.New("queue not found")

var commands []command

func init() {
	commands = []command{
		{name: "demo", help: "run demo queues with live traffic and serve the dashboard (embedded Redis unless --redis/REDIS_URL)",
			flags: demoFlags, run: runDemo},
		{name: "dashboard", help: "serve the web dashboard", flags: dashboardFlags, run: runDashboard},
		{name: "queues", help: "list the queues and their counts", run: cmdQueues},
		{name: "stats", args: "QUEUE", help: "counts, oldest waiting job, throughput and workers of a queue", run: cmdStats},
		{name: "jobs", args: "QUEUE", help: "list a queue's jobs in one state (--state, --page, --limit)", flags: jobsFlags, run: cmdJobs},
		{name: "job", args: "QUEUE ID", help: "show one job with its error, result, progress and logs", run: cmdJob},
		{name: "events", args: "QUEUE", help: "print the queue's recent events (--follow to keep following)", flags: eventsFlags, run: cmdEvents},
		{name: "retry", args: "QUEUE ID", help: "run a failed or dead job again now", run: cmdRetry},
		{name: "retry-all", args: "QUEUE", help: "run every failed (--state failed) or dead (--state dead) job again now", flags: stateFlag, run: cmdRetryAll},
		{name: "promote", args: "QUEUE ID", help: "make a delayed or failed job ready now", run: cmdPromote},
		{name: "promote-all", args: "QUEUE", help: "make every delayed job ready now", run: cmdPromoteAll},
		{name: "remove", args: "QUEUE ID", help: "delete a job (--force: even while it runs)", destructive: true, flags: forceFlag, run: cmdRemove},
		{name: "purge-dlq", args: "QUEUE", help: "delete every dead job", destructive: true, run: cmdPurge},
		{name: "clean", args: "QUEUE", help: "delete completed or dead jobs (--state, --older-than, --limit)", destructive: true, flags: cleanFlags, run: cmdClean},
		{name: "drain", args: "QUEUE", help: "delete every waiting job (--delayed: and delayed ones)", destructive: true, flags: drainFlags, run: cmdDrain},
		{name: "obliterate", args: "QUEUE", help: "delete the whole queue (--force: even with active jobs)", destructive: true, flags: forceFlag, run: cmdObliterate},
		{name: "pause", args: "QUEUE", help: "stop workers from starting the queue's jobs", run: cmdPause},
		{name: "resume", args: "QUEUE", help: "resume a paused queue", run: cmdResume},
		{name: "schedules", args: "QUEUE", help: "list the queue's recurring schedules", run: cmdSchedules},
		{name: "trigger", args: "QUEUE KEY", help: "enqueue a schedule's job now", run: cmdTrigger},
	}
}

func jobsFlags(fs *flag.FlagSet, e *env) {
	fs.StringVar(&e.state, "state", "waiting", "waiting, active, delayed, failed, completed or dead")
	fs.IntVar(&e.page, "page", 1, "page number, from 1")
	fs.IntVar(&e.limit, "limit", 20, "jobs per page (at most 1000)")
}
func eventsFlags(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&e.follow, "follow", false, "keep following new events until interrupted")
	fs.StringVar(&e.from, "from", "", "an event cursor to continue after (default: the oldest kept; with --follow: now)")
	fs.IntVar(&e.limit, "limit", 100, "stream entries to read (without --follow)")
}
func stateFlag(fs *flag.FlagSet, e *env) { fs.StringVar(&e.state, "state", "", "the state") }
func forceFlag(fs *flag.FlagSet, e *env) { fs.BoolVar(&e.force, "force", false, "even while active") }
func drainFlags(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&e.delayed, "delayed", false, "delete delayed jobs too")
}
func cleanFlags(fs *flag.FlagSet, e *env) {
	fs.StringVar(&e.state, "state", "", "completed or dead")
	fs.DurationVar(&e.olderThan, "older-than", 0, "only jobs finished longer ago than this (e.g. 24h)")
	fs.IntVar(&e.limit, "limit", 0, "delete at most this many (0: no limit)")
}

// queue returns the handle of an existing queue: one listed in the
// prefix's registry (errQueueNotFound otherwise).
func (e *env) queue(name string) (*hopper.Queue, error) {
	q, err := hopper.NewQueue(e.client, name, &hopper.QueueConfig{Prefix: e.prefix})
	if err != nil {
		return nil, err
	}
	names, err := hopper.ListQueues(e.ctx, e.client, e.prefix)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("%w: %s (under prefix %q)", errQueueNotFound, name, e.prefix)
	}
	return q, nil
}

func cmdQueues(e *env, _ []string) error {
	names, err := hopper.ListQueues(e.ctx, e.client, e.prefix)
	if err != nil {
		return err
	}
	slices.Sort(names)
	type row struct {
		Queue string `json:"queue"`
		hopper.Counts
	}
	rows := make([]row, 0, len(names))
	for _, n := range names {
		q, err := hopper.NewQueue(e.client, n, &hopper.QueueConfig{Prefix: e.prefix})
		if err != nil {
			return err
		}
		c, err := q.Counts(e.ctx)
		if err != nil {
			return err
		}
		rows = append(rows, row{n, c})
	}
	return e.out(rows, func(w io.Writer) {
		fmt.Fprintln(w, "QUEUE\tWAITING\tACTIVE\tDELAYED\tFAILED\tCOMPLETED\tDEAD\tPAUSED")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%v\n", r.Queue, r.Waiting, r.Active, r.Delayed, r.Failed,
				r.Completed, r.Dead, r.Paused)
		}
	})
}

func cmdStats(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	st, err := q.Stats(e.ctx)
	if err != nil {
		return err
	}
	var done5, failed5, done60, failed60 int64
	for i, m := range st.Minutes {
		done60 += m.Completed
		failed60 += m.Failed
		if i >= len(st.Minutes)-5 {
			done5 += m.Completed
			failed5 += m.Failed
		}
	}
	return e.out(st, func(w io.Writer) {
		fmt.Fprintf(w, "queue\t%s\n", q.Name())
		fmt.Fprintf(w, "paused\t%v\n", st.Paused)
		fmt.Fprintf(w, "waiting\t%d\nactive\t%d\ndelayed\t%d\nfailed\t%d\ncompleted\t%d\ndead\t%d\n",
			st.Waiting, st.Active, st.Delayed, st.Failed, st.Completed, st.Dead)
		fmt.Fprintf(w, "oldest waiting\t%s\n", st.OldestWaiting.Round(time.Millisecond))
		fmt.Fprintf(w, "last 5 min\t%d completed, %d failed\n", done5, failed5)
		fmt.Fprintf(w, "last hour\t%d completed, %d failed\n", done60, failed60)
		fmt.Fprintf(w, "workers\t%d\n", len(st.Workers))
		for _, wi := range st.Workers {
			fmt.Fprintf(w, "  %s\t%s pid %d, concurrency %d, %d active, last seen %s\n", wi.ID, wi.Host, wi.PID,
				wi.Concurrency, wi.Active, wi.LastSeen.UTC().Format(time.RFC3339))
		}
	})
}

// jobJSON is a job as --json prints it.
type jobJSON struct {
	ID           string            `json:"id"`
	Queue        string            `json:"queue"`
	Name         string            `json:"name"`
	State        hopper.State      `json:"state"`
	Payload      json.RawMessage   `json:"payload,omitempty"`
	PayloadText  string            `json:"payload_text,omitempty"`
	AttemptsMade int               `json:"attempts_made"`
	MaxAttempts  int               `json:"max_attempts"`
	Stalls       int               `json:"stalls,omitempty"`
	Priority     int               `json:"priority,omitempty"`
	Progress     json.RawMessage   `json:"progress,omitempty"`
	Result       string            `json:"result,omitempty"`
	LastError    string            `json:"last_error,omitempty"`
	DeadReason   string            `json:"dead_reason,omitempty"`
	Stack        string            `json:"stack,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	StartedAt    *time.Time        `json:"started_at,omitempty"`
	FinishedAt   *time.Time        `json:"finished_at,omitempty"`
	DueAt        *time.Time        `json:"due_at,omitempty"`
	Logs         []hopper.LogEntry `json:"logs,omitempty"`
}

func toJSON(j *hopper.Job) jobJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	out := jobJSON{ID: j.ID, Queue: j.Queue, Name: j.Name, State: j.State, AttemptsMade: j.AttemptsMade,
		MaxAttempts: j.MaxAttempts, Stalls: j.Stalls, Priority: j.Priority, Progress: j.Progress,
		Result: string(j.Result), LastError: j.LastError, DeadReason: j.DeadReason, Stack: j.Stack,
		Metadata: j.Metadata, CreatedAt: j.CreatedAt, StartedAt: opt(j.StartedAt), FinishedAt: opt(j.FinishedAt),
		DueAt: opt(j.DueAt), Logs: j.Logs}
	if json.Valid(j.Payload) {
		out.Payload = j.Payload
	} else if len(j.Payload) > 0 {
		out.PayloadText = string(j.Payload)
	}
	return out
}

func cmdJobs(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if e.page < 1 || e.limit < 1 {
		return usagef("--page and --limit must be at least 1")
	}
	jobs, err := q.Jobs(e.ctx, hopper.State(e.state), (e.page-1)*e.limit, e.limit)
	if err != nil {
		return err
	}
	rows := make([]jobJSON, len(jobs))
	for i, j := range jobs {
		rows[i] = toJSON(j)
	}
	return e.out(rows, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tNAME\tSTATE\tATTEMPTS\tCREATED\tERROR")
		for _, j := range jobs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Name, j.State, j.AttemptsMade, j.MaxAttempts,
				j.CreatedAt.UTC().Format(time.RFC3339), oneLine(j.LastError, 60))
		}
		if len(jobs) == 0 {
			fmt.Fprintf(w, "(no %s jobs on page %d)\n", e.state, e.page)
		}
	})
}

func cmdJob(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	j, err := q.Job(e.ctx, pos[1])
	if err != nil {
		return err
	}
	return e.out(toJSON(j), func(w io.Writer) {
		fmt.Fprintf(w, "id\t%s\nqueue\t%s\nname\t%s\nstate\t%s\nattempts\t%d of %d\n", j.ID, j.Queue, j.Name, j.State,
			j.AttemptsMade, j.MaxAttempts)
		if j.Stalls > 0 {
			fmt.Fprintf(w, "stalls\t%d\n", j.Stalls)
		}
		fmt.Fprintf(w, "created\t%s\n", j.CreatedAt.UTC().Format(time.RFC3339Nano))
		for _, t := range []struct {
			k string
			v time.Time
		}{{"started", j.StartedAt}, {"finished", j.FinishedAt}, {"due", j.DueAt}} {
			if !t.v.IsZero() {
				fmt.Fprintf(w, "%s\t%s\n", t.k, t.v.UTC().Format(time.RFC3339Nano))
			}
		}
		fmt.Fprintf(w, "payload\t%s\n", oneLine(string(j.Payload), 200))
		if j.Progress != nil {
			fmt.Fprintf(w, "progress\t%s\n", j.Progress)
		}
		if j.Result != nil {
			fmt.Fprintf(w, "result\t%s\n", oneLine(string(j.Result), 200))
		}
		if j.LastError != "" {
			fmt.Fprintf(w, "last error\t%s\n", oneLine(j.LastError, 200))
		}
		if j.DeadReason != "" {
			fmt.Fprintf(w, "dead reason\t%s\n", j.DeadReason)
		}
		for _, l := range j.Logs {
			fmt.Fprintf(w, "log\t%s  attempt %d  %s\n", l.Time.UTC().Format(time.RFC3339), l.Attempt, oneLine(l.Message, 200))
		}
	})
}

func cmdEvents(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	print := func(ev hopper.Event) error {
		if e.json {
			return json.NewEncoder(e.stdout).Encode(ev)
		}
		detail := ev.Error
		if ev.Attempt > 0 {
			detail = fmt.Sprintf("attempt %d", ev.Attempt)
		}
		if ev.Progress != nil {
			detail = string(ev.Progress)
		}
		_, err := fmt.Fprintf(e.stdout, "%s  %-9s  %s  %s\n", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), ev.Type,
			ev.JobID, oneLine(detail, 120))
		return err
	}
	if !e.follow {
		evs, err := q.ReadEvents(e.ctx, e.from, e.limit)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := print(ev); err != nil {
				return err
			}
		}
		return nil
	}
	for ev, err := range q.Events(e.ctx, e.from) {
		if err != nil {
			return err
		}
		if err := print(ev); err != nil {
			return err
		}
	}
	return nil
}

func cmdRetry(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if err := q.Retry(e.ctx, pos[1]); err != nil {
		return err
	}
	return e.done(map[string]any{"retried": pos[1]}, "retried "+pos[1])
}

func cmdRetryAll(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if e.state == "" {
		return usagef("retry-all needs --state failed or --state dead")
	}
	n, err := q.RetryAll(e.ctx, hopper.State(e.state))
	if err != nil {
		return err
	}
	return e.done(map[string]any{"retried": n}, fmt.Sprintf("retried %d %s jobs", n, e.state))
}

func cmdPromote(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if err := q.Promote(e.ctx, pos[1]); err != nil {
		return err
	}
	return e.done(map[string]any{"promoted": pos[1]}, "promoted "+pos[1])
}

func cmdPromoteAll(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	n, err := q.PromoteAll(e.ctx)
	if err != nil {
		return err
	}
	return e.done(map[string]any{"promoted": n}, fmt.Sprintf("promoted %d delayed jobs", n))
}

func cmdRemove(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if _, err := q.Job(e.ctx, pos[1]); err != nil {
		return err
	}
	if err := e.confirm(fmt.Sprintf("remove job %s from %s", pos[1], pos[0])); err != nil {
		return err
	}
	if err := q.Remove(e.ctx, pos[1], &hopper.RemoveOptions{Force: e.force}); err != nil {
		if errors.Is(err, hopper.ErrJobActive) {
			return usagef("%v (use --force)", err)
		}
		return err
	}
	return e.done(map[string]any{"removed": pos[1]}, "removed "+pos[1])
}

func cmdPurge(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if err := e.confirm("delete every dead job of " + pos[0]); err != nil {
		return err
	}
	n, err := q.DeadLetters().Purge(e.ctx)
	if err != nil {
		return err
	}
	return e.done(map[string]any{"deleted": n}, fmt.Sprintf("deleted %d dead jobs", n))
}

func cmdClean(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if e.state != "completed" && e.state != "dead" {
		return usagef("clean needs --state completed or --state dead")
	}
	what := fmt.Sprintf("delete %s jobs of %s", e.state, pos[0])
	if e.olderThan > 0 {
		what += " finished more than " + e.olderThan.String() + " ago"
	}
	if err := e.confirm(what); err != nil {
		return err
	}
	n, err := q.Clean(e.ctx, hopper.State(e.state), e.olderThan, e.limit)
	if err != nil {
		return err
	}
	return e.done(map[string]any{"deleted": n}, fmt.Sprintf("deleted %d %s jobs", n, e.state))
}

func cmdDrain(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	what := "delete every waiting job of " + pos[0]
	if e.delayed {
		what = "delete every waiting and delayed job of " + pos[0]
	}
	if err := e.confirm(what); err != nil {
		return err
	}
	n, err := q.Drain(e.ctx, e.delayed)
	if err != nil {
		return err
	}
	return e.done(map[string]any{"deleted": n}, fmt.Sprintf("deleted %d jobs", n))
}

func cmdObliterate(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if err := e.confirm("delete queue " + pos[0] + " with all its jobs, schedules and statistics"); err != nil {
		return err
	}
	if err := q.Obliterate(e.ctx, &hopper.ObliterateOptions{Force: e.force}); err != nil {
		if errors.Is(err, hopper.ErrJobActive) {
			return usagef("%v", err)
		}
		return err
	}
	return e.done(map[string]any{"obliterated": pos[0]}, "obliterated "+pos[0])
}

func cmdPause(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if err := q.Pause(e.ctx); err != nil {
		return err
	}
	return e.done(map[string]any{"paused": pos[0]}, "paused "+pos[0])
}

func cmdResume(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	if err := q.Resume(e.ctx); err != nil {
		return err
	}
	return e.done(map[string]any{"resumed": pos[0]}, "resumed "+pos[0])
}

func cmdSchedules(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	ss, err := q.Schedules(e.ctx)
	if err != nil {
		return err
	}
	return e.out(ss, func(w io.Writer) {
		fmt.Fprintln(w, "KEY\tSPEC\tJOB\tNEXT\tLAST\tRUNS\tPAUSED")
		for _, s := range ss {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%v\n", s.Key, s.Spec, s.JobName, when(s.Next), when(s.LastRun),
				s.Runs, s.Paused)
		}
		if len(ss) == 0 {
			fmt.Fprintln(w, "(no schedules)")
		}
	})
}

func cmdTrigger(e *env, pos []string) error {
	q, err := e.queue(pos[0])
	if err != nil {
		return err
	}
	j, err := q.TriggerSchedule(e.ctx, pos[1])
	if err != nil {
		return err
	}
	return e.done(map[string]any{"job": j.ID}, "enqueued "+j.ID)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine shortens s to one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
