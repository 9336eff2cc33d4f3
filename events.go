package hopper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
)

// EventType names what happened to a job.
type EventType string

// Event types, in the order a job usually meets them.
const (
	EventAdded     EventType = "added"     // Add, AddBulk or a schedule tick created the job
	EventWaiting   EventType = "waiting"   // a delayed or snoozed job became ready
	EventActive    EventType = "active"    // a worker claimed the job (Event.Attempt is the attempt starting)
	EventProgress  EventType = "progress"  // the handler called UpdateProgress (Event.Progress)
	EventCompleted EventType = "completed" // the handler returned nil
	EventFailed    EventType = "failed"    // an attempt failed; the job waits for its retry (Event.Error)
	EventDelayed   EventType = "delayed"   // the handler snoozed the job with RetryAfter (Event.Error)
	EventRetrying  EventType = "retrying"  // a failed job's backoff ended, or a dead job was retried
	EventDead      EventType = "dead"      // the job was dead-lettered (Event.Error, Event.Reason)
	EventStalled   EventType = "stalled"   // the job's lease expired while it ran; it was re-queued or dead-lettered
	EventReleased  EventType = "released"  // a worker shutting down handed the job back unfinished
	EventRemoved   EventType = "removed"   // Remove, Clean or Drain deleted the job
)

// DefaultEventsMaxLen is the approximate number of entries a queue's event
// stream keeps when SetEventsMaxLen was never called.
const DefaultEventsMaxLen = 10000

// Event is one thing that happened to one job, read from the queue's event
// stream (Queue.Events, Queue.ReadEvents).
//
// The stream is a Redis stream per queue, capped at about
// DefaultEventsMaxLen entries (SetEventsMaxLen changes or disables it). A
// script that changes many jobs at once (a batch of completions, a bulk add,
// a promotion) writes one entry for all of them, so the events of one entry
// share a Cursor; events of one job are always in the order they happened.
// Jobs dropped by retention trimming produce no event.
type Event struct {
	// Cursor is the stream position of the event's entry: pass it to Events
	// or ReadEvents to continue after it.
	Cursor string
	Type   EventType
	JobID  string
	// Time is when Redis recorded the event (ms precision).
	Time time.Time
	// Attempt is the attempt starting (1 = the first), for EventActive.
	Attempt int
	// Progress is the value reported, for EventProgress.
	Progress json.RawMessage
	// Error is the failed attempt's error, for EventFailed, EventDelayed and
	// EventDead ("" when none was recorded).
	Error string
	// Reason says why the job was dead-lettered, for EventDead.
	Reason string
}

// SetEventsMaxLen sets the approximate number of entries the queue's event
// stream keeps, for every process using the queue, and trims the stream to
// it; 0 turns events off and deletes the stream. The setting is stored in
// Redis and read by every state change, so it applies at once. Each entry
// costs about 100 bytes plus the ids it names.
func (q *Queue) SetEventsMaxLen(ctx context.Context, n int64) error {
	if n < 0 {
		return invalid("n", n, "must be 0 (off) or a positive number of entries")
	}
	if err := q.st.SetEventsMax(ctx, n); err != nil {
		return fmt.Errorf("hopper: queue %s: %w", q.name, err)
	}
	return nil
}

// EventsMaxLen returns the event stream's cap: 0 when events are off,
// DefaultEventsMaxLen when it was never set.
func (q *Queue) EventsMaxLen(ctx context.Context) (int64, error) {
	n, ok, err := q.st.EventsMax(ctx)
	if err != nil {
		return 0, fmt.Errorf("hopper: queue %s: %w", q.name, err)
	}
	if !ok {
		return DefaultEventsMaxLen, nil
	}
	return n, nil
}

// maxEventEntries bounds the stream entries one ReadEvents call returns.
const maxEventEntries = 1000

// ReadEvents returns the events recorded after cursor, oldest first, from at
// most limit stream entries (clamped to 1..1000; an entry may carry the
// events of a batch of jobs). It does not wait: with nothing new it returns
// no events. cursor "" or "0" starts at the oldest event kept; otherwise it
// is an Event.Cursor. To continue, pass the last event's Cursor.
func (q *Queue) ReadEvents(ctx context.Context, cursor string, limit int) ([]Event, error) {
	after, err := eventCursor(cursor)
	if err != nil {
		return nil, err
	}
	entries, err := q.st.ReadEvents(ctx, after, int64(min(max(limit, 1), maxEventEntries)), -1)
	if err != nil {
		return nil, fmt.Errorf("hopper: queue %s: %w", q.name, err)
	}
	return expandEvents(entries), nil
}

// JobEventsScan is how many of the newest stream entries JobEvents reads.
const JobEventsScan = 1000

// JobEvents returns the events of job id found among the newest
// JobEventsScan entries of the queue's event stream, oldest first: the
// recent history of one job, for a dashboard or a support request. Older
// events (or all of them, when events are off) are not returned. One round
// trip, bounded by the scan.
func (q *Queue) JobEvents(ctx context.Context, id string) ([]Event, error) {
	if why := keys.CheckJobID(id); why != "" {
		return nil, invalid("id", id, "%s", why)
	}
	entries, err := q.st.RecentEvents(ctx, JobEventsScan)
	if err != nil {
		return nil, fmt.Errorf("hopper: queue %s: %w", q.name, err)
	}
	var mine []store.EventEntry
	for i := len(entries) - 1; i >= 0; i-- { // oldest first
		if hasID(entries[i].Jobs, id) {
			mine = append(mine, entries[i])
		}
	}
	var out []Event
	for _, ev := range expandEvents(mine) {
		if ev.JobID == id {
			out = append(out, ev)
		}
	}
	return out, nil
}

// eventsBlock is how long one blocking read of the event stream waits, so
// that a follower notices a cancelled ctx within about that time.
const eventsBlock = 2 * time.Second

// Events follows the queue's event stream, like BullMQ's QueueEvents: it
// yields every event recorded after from, in order, waiting in Redis (a
// blocking XREAD, not polling) for new ones, until ctx is done or the loop
// breaks. from "" or "$" yields only events recorded after the call; "0"
// starts at the oldest event kept; any other value is an Event.Cursor to
// resume after.
//
// The sequence ends after yielding an error: ctx.Err() when ctx is done, or
// a Redis error (resume from the last Cursor you saw). Each follower holds
// one connection of the client's pool while it waits.
//
//	for ev, err := range q.Events(ctx, "$") {
//		if err != nil {
//			return err
//		}
//		log.Printf("%s %s", ev.JobID, ev.Type)
//	}
func (q *Queue) Events(ctx context.Context, from string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		var after string
		if from == "" || from == "$" {
			last, err := q.st.LastEventID(ctx)
			if err != nil {
				yield(Event{}, fmt.Errorf("hopper: queue %s: %w", q.name, err))
				return
			}
			after = last
		} else {
			var err error
			if after, err = eventCursor(from); err != nil {
				yield(Event{}, err)
				return
			}
		}
		for {
			if err := ctx.Err(); err != nil {
				yield(Event{}, err)
				return
			}
			entries, err := q.st.ReadEvents(ctx, after, maxEventEntries, eventsBlock)
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				} else {
					err = fmt.Errorf("hopper: queue %s: %w", q.name, err)
				}
				yield(Event{}, err)
				return
			}
			for _, ev := range expandEvents(entries) {
				if !yield(ev, nil) {
					return
				}
			}
			if len(entries) > 0 {
				after = entries[len(entries)-1].ID
			}
		}
	}
}

// eventCursor validates a caller's cursor: "" and "0" mean the start.
func eventCursor(c string) (string, error) {
	if c == "" || c == "0" {
		return "0-0", nil
	}
	ms, seq, ok := strings.Cut(c, "-")
	if _, err := strconv.ParseUint(ms, 10, 64); err != nil || !ok {
		return "", invalid("cursor", c, `must be "", "0" or an Event.Cursor`)
	}
	if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
		return "", invalid("cursor", c, `must be "", "0" or an Event.Cursor`)
	}
	return c, nil
}

// expandEvents splits stream entries into one Event per job.
func expandEvents(entries []store.EventEntry) []Event {
	var out []Event
	for _, e := range entries {
		ids := strings.Split(e.Jobs, " ")
		var data []string
		if e.Data != "" && json.Unmarshal([]byte(e.Data), &data) != nil {
			data = nil
		}
		at := eventTime(e.ID)
		for i, id := range ids {
			if id == "" {
				continue
			}
			ev := Event{Cursor: e.ID, Type: EventType(e.Kind), JobID: id, Time: at}
			if i < len(data) {
				ev.setData(data[i])
			}
			out = append(out, ev)
		}
	}
	return out
}

func (ev *Event) setData(d string) {
	switch ev.Type {
	case EventActive:
		ev.Attempt, _ = strconv.Atoi(d)
	case EventProgress:
		if json.Valid([]byte(d)) {
			ev.Progress = json.RawMessage(d)
		}
	case EventFailed, EventDelayed, EventDead:
		if d == "" {
			return
		}
		var e errInfo
		if json.Unmarshal([]byte(d), &e) == nil {
			ev.Error, ev.Reason = e.Error, e.Reason
		} else {
			ev.Error = d
		}
		if ev.Type != EventDead {
			ev.Reason = ""
		}
	}
}

func eventTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// ErrJobDead is matched (errors.Is) by the error Wait returns for a job that
// was dead-lettered.
var ErrJobDead = errors.New("hopper: job is dead")

// DeadJobError is Wait's error for a dead-lettered job.
type DeadJobError struct {
	Job *Job // the dead job, as read when Wait saw it die
}

func (e *DeadJobError) Error() string {
	msg := fmt.Sprintf("hopper: job %s is dead", e.Job.ID)
	if e.Job.DeadReason != "" {
		msg += ": " + e.Job.DeadReason
	}
	if e.Job.LastError != "" && e.Job.LastError != e.Job.DeadReason {
		msg += ": " + e.Job.LastError
	}
	return msg
}

// Is reports whether target is ErrJobDead.
func (e *DeadJobError) Is(target error) bool { return target == ErrJobDead }

// waitRecheck is how often Wait reads the job itself while no event about
// it arrived: it covers an event stream that is off, or trimmed past the
// job's terminal event.
const waitRecheck = 10 * time.Second

// Wait blocks until job id is terminal and returns it: a completed job (its
// Result set) with a nil error, or for a dead job the job and a
// *DeadJobError (errors.Is(err, ErrJobDead)). It returns ErrJobNotFound if
// there is no such job or it is removed while Wait waits, and ctx's error
// when ctx ends first.
//
// Wait follows the queue's event stream with blocking reads, so it learns
// of the outcome as soon as it happens without polling the job; it also
// re-reads the job every 10 s, which is all it can do when the queue's
// events are off (SetEventsMaxLen(ctx, 0)). A completed job whose retention
// deletes it at once (KeepCompleted zero) comes back with its state and ID
// only. Each waiting call holds one connection of the client's pool.
func (q *Queue) Wait(ctx context.Context, id string) (*Job, error) {
	if why := keys.CheckJobID(id); why != "" {
		return nil, invalid("id", id, "%s", why)
	}
	after, err := q.st.LastEventID(ctx)
	if err != nil {
		return nil, fmt.Errorf("hopper: wait for job %s: %w", id, err)
	}
	if j, done, err := q.waitCheck(ctx, id, ""); done {
		return j, err
	}
	every := waitRecheck
	if q.waitRecheck > 0 {
		every = q.waitRecheck
	}
	recheck := time.Now().Add(every)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		block := min(eventsBlock, max(time.Until(recheck), time.Millisecond))
		entries, err := q.st.ReadEvents(ctx, after, maxEventEntries, block)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("hopper: wait for job %s: %w", id, err)
		}
		var seen EventType
		for _, e := range entries {
			after = e.ID
			switch EventType(e.Kind) {
			case EventCompleted, EventDead, EventRemoved:
				if hasID(e.Jobs, id) {
					seen = EventType(e.Kind)
				}
			}
		}
		if seen != "" || time.Now().After(recheck) {
			if j, done, err := q.waitCheck(ctx, id, seen); done {
				return j, err
			}
			recheck = time.Now().Add(every)
		}
	}
}

// waitCheck reads the job and reports whether Wait is done. seen is the
// terminal event Wait just saw for it ("" if none).
func (q *Queue) waitCheck(ctx context.Context, id string, seen EventType) (*Job, bool, error) {
	j, err := q.Job(ctx, id)
	switch {
	case errors.Is(err, ErrJobNotFound):
		if seen == EventCompleted {
			return &Job{ID: id, Queue: q.name, State: StateCompleted}, true, nil
		}
		return nil, true, ErrJobNotFound
	case err != nil:
		return nil, true, fmt.Errorf("hopper: wait for job %s: %w", id, err)
	}
	switch j.State {
	case StateCompleted:
		return j, true, nil
	case StateDead:
		return j, true, &DeadJobError{Job: j}
	}
	return nil, false, nil
}

// hasID reports whether the space-separated list ids contains id.
func hasID(ids, id string) bool {
	for s := range strings.SplitSeq(ids, " ") {
		if s == id {
			return true
		}
	}
	return false
}
