package hopper

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hopperq/hopper/internal/store"
	"github.com/hopperq/hopper/internal/wire"
)

// State is where a job is in its life.
type State string

// Job states. Each job is in exactly one.
const (
	// StateWaiting: ready to run, in FIFO (or priority) order; also jobs of a
	// paused queue.
	StateWaiting State = "waiting"
	// StateActive: a worker holds its lease and is running it.
	StateActive State = "active"
	// StateDelayed: added with a delay or run-at time, or snoozed with
	// RetryAfter; waits until Job.DueAt.
	StateDelayed State = "delayed"
	// StateFailed: its last attempt failed and it waits for its retry at
	// Job.DueAt (backoff). Not terminal. (BullMQ's terminal "failed" is
	// hopper's StateDead.)
	StateFailed State = "failed"
	// StateCompleted: its handler returned nil. Kept per KeepCompleted.
	StateCompleted State = "completed"
	// StateDead: in the dead-letter queue: attempts exhausted, a permanent
	// error, or stalled too often. Kept per KeepDead.
	StateDead State = "dead"
)

// Job is a snapshot of one job, as returned by Queue.Add, Queue.Job and the
// dead-letter queue, and as handed to a Handler. Fields are not updated
// after the snapshot was taken.
type Job struct {
	ID      string
	Queue   string
	Name    string
	Payload []byte
	State   State

	// Duplicate is set by Add and AddBulk when a job with the requested ID
	// already existed: nothing was added and the Job describes the existing
	// job (its state, name and payload at the time of the call).
	Duplicate bool

	// AttemptsMade counts finished attempts (completed, failed, or
	// dead-lettered by a permanent error). Inside a handler the attempt
	// running is AttemptsMade+1. Snoozes (RetryAfter) and stalls do not count.
	AttemptsMade int
	// MaxAttempts is the job's attempt budget (JobOptions.Attempts).
	MaxAttempts int
	// Stalls counts the times the job's lease expired while it ran (its
	// worker crashed, hung or lost Redis).
	Stalls int

	Priority int
	Timeout  time.Duration
	Backoff  Backoff

	// Metadata is JobOptions.Metadata.
	Metadata map[string]string
	// Schedule is the key of the schedule that enqueued the job, if any.
	Schedule string

	// Progress is the last value a handler reported with UpdateProgress
	// (JSON), or nil.
	Progress json.RawMessage
	// Result is what the handler stored with SetResult, for completed jobs.
	Result []byte
	// LastError is the error of the last failed attempt ("" if none).
	LastError string
	// Stack is the stack trace of the last failure when it was a panic.
	Stack string
	// DeadReason says why a dead job was dead-lettered.
	DeadReason string
	// Logs holds the last MaxLogEntries entries handlers wrote with Job.Log,
	// oldest first, across all attempts. Only Queue.Job reads it; job lists
	// leave it empty.
	Logs []LogEntry

	CreatedAt  time.Time // producer's clock
	StartedAt  time.Time // start of the last attempt (zero if never started)
	FinishedAt time.Time // completion or dead-lettering (zero otherwise)
	// DueAt is when a delayed or failed job becomes ready; for an active
	// job, when its current lease expires. Zero otherwise.
	DueAt time.Time

	keepCompleted, keepDead wire.Retention
	customBackoff           bool // Backoff was set explicitly on the job

	// Set on jobs handed to a handler.
	lease *jobLease
}

// jobLease is the handler-side state of a running job.
type jobLease struct {
	st    *store.Store
	token string
	mu    sync.Mutex
	res   []byte
}

// Decode unmarshals the JSON payload into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("hopper: decode payload of job %s: %w", j.ID, err)
	}
	return nil
}

// MaxProgressBytes bounds the JSON encoding of a progress value.
const MaxProgressBytes = 64 << 10

// UpdateProgress records v (a number, or any small JSON-encodable value) as
// the job's progress, visible through Queue.Job. It needs the job's current
// lease, so it only works on the Job a handler received: it returns
// ErrLeaseLost when the lease has been lost and a *ValidationError when the
// job is not running in this process or v is not encodable or too large.
// Safe for concurrent use. It costs one round trip.
func (j *Job) UpdateProgress(ctx context.Context, v any) error {
	if j.lease == nil {
		return invalid("job", j.ID, "UpdateProgress works only on the Job passed to a handler")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return invalid("progress", v, "not JSON-encodable: %v", err)
	}
	if len(b) > MaxProgressBytes {
		return invalid("progress", string(b[:32]), "is %d bytes encoded, more than %d", len(b), MaxProgressBytes)
	}
	s, err := j.lease.st.Progress(ctx, j.ID, j.lease.token, b)
	if err != nil {
		return fmt.Errorf("hopper: update progress of job %s: %w", j.ID, err)
	}
	if s != store.LeaseOK {
		return ErrLeaseLost
	}
	return nil
}

// SetResult sets the result stored with the job when its handler returns nil
// (the last call wins). It only applies to the Job passed to a handler; on
// any other Job it does nothing. Safe for concurrent use. Results count
// toward Redis memory: keep them small.
func (j *Job) SetResult(b []byte) {
	if j.lease == nil {
		return
	}
	j.lease.mu.Lock()
	j.lease.res = append([]byte(nil), b...)
	j.lease.mu.Unlock()
}

func (j *Job) result() []byte {
	if j.lease == nil {
		return nil
	}
	j.lease.mu.Lock()
	defer j.lease.mu.Unlock()
	return j.lease.res
}

// errInfo is the JSON stored in the err column.
type errInfo struct {
	Error  string `json:"error"`
	Stack  string `json:"stack,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func msToTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// jobFromBody decodes a stored body into a Job with the defaults applied.
func jobFromBody(queue, id, body string) (*Job, error) {
	h, payload, err := wire.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("hopper: job %s: %w", id, err)
	}
	return jobFromHeader(queue, id, &h, payload), nil
}

// jobFromHeader builds a Job from a decoded header, with the defaults
// applied.
func jobFromHeader(queue, id string, h *wire.Header, payload []byte) *Job {
	j := &Job{ID: id, Queue: queue, Name: h.Name, Payload: payload, CreatedAt: msToTime(h.Created),
		Metadata: h.Meta, Schedule: h.Schedule,
		MaxAttempts: DefaultAttempts, Timeout: DefaultTimeout, Backoff: defaultBackoff(), Priority: h.Priority,
		keepCompleted: wire.Retention{Count: DefaultKeepCompletedCount, Age: DefaultKeepCompletedAge.Milliseconds()},
		keepDead:      wire.Retention{Count: DefaultKeepDeadCount, Age: DefaultKeepDeadAge.Milliseconds()},
	}
	if h.Attempts > 0 {
		j.MaxAttempts = h.Attempts
	}
	if h.Timeout > 0 {
		j.Timeout = time.Duration(h.Timeout) * time.Millisecond
	}
	if h.Backoff != nil {
		j.Backoff = backoffFromWire(*h.Backoff)
		j.customBackoff = true
	}
	if h.KeepCompleted != nil {
		j.keepCompleted = *h.KeepCompleted
	}
	if h.KeepDead != nil {
		j.keepDead = *h.KeepDead
	}
	return j
}

// LogEntry is one line of a job's log (Job.Log).
type LogEntry struct {
	Time    time.Time // the writer's clock, ms precision
	Attempt int       // the attempt that wrote it (1 = the first)
	Message string
}

// logLine is a LogEntry as stored: one line of JSON.
type logLine struct {
	T int64  `json:"t"`
	A int    `json:"a"`
	M string `json:"m"`
}

// Bounds of job logs: a job keeps its last MaxLogEntries entries; longer
// messages are cut to MaxLogMessageBytes.
const (
	MaxLogEntries      = 100
	MaxLogMessageBytes = 2 << 10
)

// Log appends msg to the job's log, which Queue.Job returns (Job.Logs) with
// the time and the attempt that wrote it. The log keeps the job's last
// MaxLogEntries entries across attempts; a message longer than
// MaxLogMessageBytes is cut. Like UpdateProgress it needs the job's current
// lease: it returns ErrLeaseLost when the lease is gone and a
// *ValidationError on a Job that is not running in this process. It costs
// one round trip; for chatty output, log with slog and keep Job.Log for
// milestones an operator should see next to the job.
func (j *Job) Log(ctx context.Context, msg string) error {
	if j.lease == nil {
		return invalid("job", j.ID, "Log works only on the Job passed to a handler")
	}
	if len(msg) > MaxLogMessageBytes {
		msg = strings.ToValidUTF8(msg[:MaxLogMessageBytes], "")
	}
	b, err := json.Marshal(logLine{T: time.Now().UnixMilli(), A: j.AttemptsMade + 1, M: msg})
	if err != nil {
		return fmt.Errorf("hopper: log for job %s: %w", j.ID, err)
	}
	s, err := j.lease.st.Log(ctx, j.ID, j.lease.token, b, MaxLogEntries)
	if err != nil {
		return fmt.Errorf("hopper: log for job %s: %w", j.ID, err)
	}
	if s != store.LeaseOK {
		return ErrLeaseLost
	}
	return nil
}

func parseLogs(s string) []LogEntry {
	var out []LogEntry
	for line := range strings.SplitSeq(s, "\n") {
		var l logLine
		if line == "" || json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		out = append(out, LogEntry{Time: time.UnixMilli(l.T), Attempt: l.A, Message: l.M})
	}
	return out
}

// jobFromRecord builds a Job from a full stored record.
func jobFromRecord(queue string, r *store.Record) (*Job, error) {
	j, err := jobFromBody(queue, r.ID, r.Body)
	if err != nil {
		return nil, err
	}
	j.State = State(r.State)
	j.AttemptsMade = r.Attempts
	j.Stalls = r.Stalls
	j.StartedAt = msToTime(r.StartedMs)
	j.FinishedAt = msToTime(r.FinishedMs)
	switch j.State {
	case StateDelayed, StateFailed, StateActive:
		j.DueAt = msToTime(r.Score)
	}
	if r.Result != nil {
		j.Result = []byte(*r.Result)
	}
	if r.Progress != "" {
		j.Progress = json.RawMessage(r.Progress)
	}
	if r.Log != "" {
		j.Logs = parseLogs(r.Log)
	}
	if r.Err != "" {
		var e errInfo
		if json.Unmarshal([]byte(r.Err), &e) == nil {
			j.LastError, j.Stack, j.DeadReason = e.Error, e.Stack, e.Reason
		} else {
			j.LastError = r.Err
		}
		if j.State != StateDead {
			j.DeadReason = ""
		}
	}
	return j, nil
}

func wireDefaultKeepDead() wire.Retention {
	return wire.Retention{Count: DefaultKeepDeadCount, Age: DefaultKeepDeadAge.Milliseconds()}
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
