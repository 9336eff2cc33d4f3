package hopper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hopperq/hopper/internal/cronspec"
	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
	"github.com/hopperq/hopper/internal/wire"
)

// Delayed jobs.
//
// A job added with JobOptions.Delay or RunAt, a job snoozed with RetryAfter,
// and a failed job awaiting its retry sit in time-ordered sets until due.
// Workers promote due jobs to waiting: each worker learns the earliest due
// time from its fetches and from the queue's wake-up marker and sets a timer
// for it, and every worker also promotes on each maintenance pass
// (WorkerConfig.PollInterval). Promotion is one atomic script, so a due job
// is promoted exactly once however many workers race for it. Due times are
// judged on the Redis server's clock.
//
// Recurring schedules.
//
// A Schedule enqueues a job on every tick of a cron spec. Schedules live in
// Redis under the queue's keys, so they survive restarts and are shared by
// every process. Any number of processes may run the scheduler (every
// Worker does, unless WorkerConfig.DisableScheduler is set; TickHandler does
// on each call): each tick is claimed with a compare-and-set on the
// schedule's next tick, so it enqueues exactly one job, with the ID
// "<schedule key>@<tick in Unix ms>".

// promoteBatch bounds the jobs one promote call moves per set.
const promoteBatch = 1000

// Promote makes a delayed or failed job ready now, ahead of its due time.
// ErrJobNotFound if the job does not exist or is in another state.
func (q *Queue) Promote(ctx context.Context, id string) error {
	r, err := q.st.Promote(ctx, q.nowArg(), promoteBatch, id)
	if err != nil {
		return fmt.Errorf("hopper: promote job %s: %w", id, err)
	}
	if r.Moved == 0 {
		return fmt.Errorf("%w: no delayed or failed job %s in queue %s", ErrJobNotFound, id, q.name)
	}
	return nil
}

// ErrScheduleNotFound: no schedule with that key exists in the queue.
var ErrScheduleNotFound = errors.New("hopper: schedule not found")

// MissedPolicy says what a scheduler does with ticks that passed while no
// scheduler ran (every process was down).
type MissedPolicy int

const (
	// MissedRunOnce enqueues one job for the latest missed tick and counts
	// the others as skipped. The default: the work happens once, no storm.
	MissedRunOnce MissedPolicy = iota
	// MissedSkip skips every tick handled more than MissedGrace after its
	// time, counting them; the schedule resumes at its next tick.
	MissedSkip
)

// MissedGrace is how late a tick may be handled and still count as on time
// under MissedSkip.
const MissedGrace = time.Minute

// MaxSchedules bounds the schedules Queue.Schedules returns.
const MaxSchedules = 10000

// maxScheduleKeyLen leaves room for "@<tick>" within a job ID.
const maxScheduleKeyLen = 150

// ScheduleOptions are options of a recurring schedule. nil means defaults.
type ScheduleOptions struct {
	// TimeZone is the IANA zone the spec is read in (e.g. "Europe/Paris"),
	// so "0 9 * * *" means 09:00 there, across DST changes. Defaults to UTC.
	TimeZone string
	// Missed is the missed-tick policy. Defaults to MissedRunOnce.
	Missed MissedPolicy
	// Job holds the options of each enqueued job (attempts, backoff,
	// timeout, priority, retention, metadata). ID, Delay, RunAt and Unique
	// are not allowed: each tick's job ID is derived from the tick.
	Job *JobOptions
	// Paused creates or updates the schedule paused: it fires nothing until
	// ResumeSchedule.
	Paused bool
}

// Schedule is a snapshot of a recurring schedule.
type Schedule struct {
	Key      string
	Spec     string
	TimeZone string
	JobName  string
	Payload  []byte
	Missed   MissedPolicy
	Paused   bool
	// Next is the next tick; zero while paused or when the spec has no
	// further tick.
	Next time.Time
	// LastRun is the last tick a job was enqueued for, LastJobID that job.
	LastRun   time.Time
	LastJobID string
	// Runs counts ticks that enqueued a job; Skipped counts ticks passed
	// over (missed while every scheduler was down, or skipped by MissedSkip).
	Runs, Skipped int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// schedDef is the stored definition of a schedule.
type schedDef struct {
	Spec     string      `json:"spec"`
	TZ       string      `json:"tz,omitempty"`
	Name     string      `json:"name"`
	Payload  []byte      `json:"payload,omitempty"`
	Job      wire.Header `json:"job"`
	Priority int         `json:"priority,omitempty"`
	Missed   int         `json:"missed,omitempty"`
	Paused   bool        `json:"paused,omitempty"`
	Created  int64       `json:"created"`
	Updated  int64       `json:"updated"`
}

type schedRun struct {
	Last    int64  `json:"last"`
	Job     string `json:"job"`
	Runs    int64  `json:"runs"`
	Skipped int64  `json:"skipped"`
}

// UpsertSchedule creates or replaces the schedule key: on every tick of spec
// it enqueues a job named jobName with payload. spec is a cron expression
// (5 fields, or 6 with leading seconds), a descriptor (@hourly, @daily,
// @weekly, @monthly, @yearly, @every <duration>), or a preset ("hourly",
// "daily", "weekly", "monthly"). A changed spec takes effect from the next
// tick; a tick already due is still run once. key uses the job-ID alphabet,
// at most 150 bytes. One round trip to read, one to write.
func (q *Queue) UpsertSchedule(ctx context.Context, key, spec, jobName string, payload []byte, opts *ScheduleOptions) (*Schedule, error) {
	ps, err := q.prepareSchedule(key, spec, jobName, payload, opts)
	if err != nil {
		return nil, err
	}
	return q.writeSchedule(ctx, ps)
}

// preparedSchedule is a validated schedule, ready to write.
type preparedSchedule struct {
	key    string
	cs     cronspec.Schedule
	def    schedDef
	paused bool
}

// prepareSchedule validates a schedule's arguments and resolves its job
// options; it sends nothing to Redis.
func (q *Queue) prepareSchedule(key, spec, jobName string, payload []byte, opts *ScheduleOptions) (*preparedSchedule, error) {
	if opts == nil {
		opts = &ScheduleOptions{}
	}
	if why := keys.CheckJobID(key); why != "" || len(key) > maxScheduleKeyLen {
		if why == "" {
			why = fmt.Sprintf("is longer than %d bytes", maxScheduleKeyLen)
		}
		return nil, invalid("schedule key", key, "%s", why)
	}
	cs, err := cronspec.Parse(spec, opts.TimeZone)
	if err != nil {
		return nil, invalid("schedule spec", spec+" "+opts.TimeZone, "%v", err)
	}
	if opts.Missed != MissedRunOnce && opts.Missed != MissedSkip {
		return nil, invalid("ScheduleOptions.Missed", opts.Missed, "must be MissedRunOnce or MissedSkip")
	}
	if j := opts.Job; j != nil && (j.ID != "" || j.Delay != 0 || !j.RunAt.IsZero() || j.Unique != nil) {
		return nil, invalid("ScheduleOptions.Job", key, "ID, Delay, RunAt and Unique cannot be set on a schedule's jobs")
	}
	r, err := q.resolve(jobName, payload, opts.Job, 0)
	if err != nil {
		return nil, err
	}
	return &preparedSchedule{key: key, cs: cs, paused: opts.Paused, def: schedDef{Spec: spec, TZ: opts.TimeZone,
		Name: jobName, Payload: payload, Job: r.header, Priority: r.priority, Missed: int(opts.Missed), Paused: opts.Paused}}, nil
}

// writeSchedule creates or replaces a prepared schedule.
func (q *Queue) writeSchedule(ctx context.Context, ps *preparedSchedule) (*Schedule, error) {
	key, spec, def := ps.key, ps.def.Spec, ps.def
	now := q.clock()
	def.Created, def.Updated = now.UnixMilli(), now.UnixMilli()
	for range 10 {
		old, err := q.st.ScheduleDefs(ctx, []string{key}, 1)
		if err != nil {
			return nil, fmt.Errorf("hopper: upsert schedule %s: %w", key, err)
		}
		expect := ""
		next := nextTick(ps.cs, now)
		if len(old) == 1 {
			expect = old[0].Def
			var od schedDef
			_ = json.Unmarshal([]byte(old[0].Def), &od)
			if od.Created > 0 {
				def.Created = od.Created
			}
			switch {
			case old[0].NextMs >= 0 && old[0].NextMs <= now.UnixMilli():
				next = old[0].NextMs // a due tick not fired yet still runs once
			case old[0].NextMs >= 0 && od.Spec == spec && od.TZ == def.TZ:
				next = old[0].NextMs // same spec (e.g. upserted at every deploy): keep the tick
			}
		}
		if ps.paused {
			next = -1
		}
		b, err := json.Marshal(def)
		if err != nil {
			return nil, fmt.Errorf("hopper: encode schedule %s: %w", key, err)
		}
		q.ensureRegistered(ctx)
		code, err := q.st.SetSchedule(ctx, key, string(b), next, expect)
		if err != nil {
			return nil, fmt.Errorf("hopper: upsert schedule %s: %w", key, err)
		}
		if code >= 0 {
			return q.GetSchedule(ctx, key)
		}
	}
	return nil, fmt.Errorf("hopper: upsert schedule %s: too many concurrent changes", key)
}

func nextTick(cs cronspec.Schedule, now time.Time) int64 {
	n := cs.Next(now)
	if n.IsZero() {
		return -1
	}
	return n.UnixMilli()
}

// GetSchedule returns schedule key; ErrScheduleNotFound if there is none.
func (q *Queue) GetSchedule(ctx context.Context, key string) (*Schedule, error) {
	recs, err := q.st.ScheduleDefs(ctx, []string{key}, 1)
	if err != nil {
		return nil, fmt.Errorf("hopper: get schedule %s: %w", key, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s in queue %s", ErrScheduleNotFound, key, q.name)
	}
	return scheduleFromRecord(recs[0])
}

// Schedules lists the queue's schedules (at most MaxSchedules), with their
// next and last runs. Two round trips.
func (q *Queue) Schedules(ctx context.Context) ([]*Schedule, error) {
	recs, err := q.st.ScheduleDefs(ctx, nil, MaxSchedules)
	if err != nil {
		return nil, fmt.Errorf("hopper: list schedules of %s: %w", q.name, err)
	}
	out := make([]*Schedule, 0, len(recs))
	for _, r := range recs {
		s, err := scheduleFromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func scheduleFromRecord(r store.ScheduleRecord) (*Schedule, error) {
	var d schedDef
	if err := json.Unmarshal([]byte(r.Def), &d); err != nil {
		return nil, fmt.Errorf("hopper: schedule %s: malformed definition: %w", r.Key, err)
	}
	s := &Schedule{Key: r.Key, Spec: d.Spec, TimeZone: d.TZ, JobName: d.Name, Payload: d.Payload,
		Missed: MissedPolicy(d.Missed), Paused: d.Paused, Next: msToTime(r.NextMs),
		CreatedAt: msToTime(d.Created), UpdatedAt: msToTime(d.Updated)}
	if r.Run != "" {
		var run schedRun
		if json.Unmarshal([]byte(r.Run), &run) == nil {
			s.LastRun, s.LastJobID, s.Runs, s.Skipped = msToTime(run.Last), run.Job, run.Runs, run.Skipped
		}
	}
	return s, nil
}

// RemoveSchedule deletes schedule key. Jobs it already enqueued stay.
// ErrScheduleNotFound if there is none.
func (q *Queue) RemoveSchedule(ctx context.Context, key string) error {
	ok, err := q.st.RemoveSchedule(ctx, key)
	if err != nil {
		return fmt.Errorf("hopper: remove schedule %s: %w", key, err)
	}
	if !ok {
		return fmt.Errorf("%w: %s in queue %s", ErrScheduleNotFound, key, q.name)
	}
	return nil
}

// PauseSchedule stops schedule key from firing until ResumeSchedule.
func (q *Queue) PauseSchedule(ctx context.Context, key string) error {
	return q.setPaused(ctx, key, true)
}

// ResumeSchedule makes a paused schedule fire again from its next tick
// after now (ticks during the pause are not run).
func (q *Queue) ResumeSchedule(ctx context.Context, key string) error {
	return q.setPaused(ctx, key, false)
}

func (q *Queue) setPaused(ctx context.Context, key string, paused bool) error {
	for range 10 {
		recs, err := q.st.ScheduleDefs(ctx, []string{key}, 1)
		if err != nil {
			return fmt.Errorf("hopper: pause schedule %s: %w", key, err)
		}
		if len(recs) == 0 {
			return fmt.Errorf("%w: %s in queue %s", ErrScheduleNotFound, key, q.name)
		}
		var d schedDef
		if err := json.Unmarshal([]byte(recs[0].Def), &d); err != nil {
			return fmt.Errorf("hopper: schedule %s: malformed definition: %w", key, err)
		}
		if d.Paused == paused {
			return nil
		}
		cs, err := cronspec.Parse(d.Spec, d.TZ)
		if err != nil {
			return fmt.Errorf("hopper: schedule %s: %w", key, err)
		}
		d.Paused, d.Updated = paused, q.clock().UnixMilli()
		next := int64(-1)
		if !paused {
			next = nextTick(cs, q.clock())
		}
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		code, err := q.st.SetSchedule(ctx, key, string(b), next, recs[0].Def)
		if err != nil {
			return fmt.Errorf("hopper: pause schedule %s: %w", key, err)
		}
		if code >= 0 {
			return nil
		}
	}
	return fmt.Errorf("hopper: pause schedule %s: too many concurrent changes", key)
}

// TriggerSchedule enqueues one job of schedule key now, outside its ticks
// (its ID is "<key>@manual-<ms>"). The schedule's ticks are unaffected, and
// so are its LastRun and Runs, which count ticks.
func (q *Queue) TriggerSchedule(ctx context.Context, key string) (*Job, error) {
	recs, err := q.st.ScheduleDefs(ctx, []string{key}, 1)
	if err != nil {
		return nil, fmt.Errorf("hopper: trigger schedule %s: %w", key, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s in queue %s", ErrScheduleNotFound, key, q.name)
	}
	var d schedDef
	if err := json.Unmarshal([]byte(recs[0].Def), &d); err != nil {
		return nil, fmt.Errorf("hopper: schedule %s: malformed definition: %w", key, err)
	}
	id := key + "@manual-" + strconv.FormatInt(q.clock().UnixMilli(), 10)
	h := d.Job
	h.Created, h.Schedule = q.clock().UnixMilli(), key
	body, err := wire.Encode(&h, d.Payload)
	if err != nil {
		return nil, err
	}
	res, err := q.st.Add(ctx, q.nowArg(), []store.NewJob{{ID: id, Body: body, Priority: d.Priority}})
	if err != nil {
		return nil, fmt.Errorf("hopper: trigger schedule %s: %w", key, err)
	}
	j, err := jobFromBody(q.name, id, string(body))
	if err != nil {
		return nil, err
	}
	j.State, j.Duplicate = State(res[0].State), !res[0].Added
	return j, nil
}

// ScheduleAction enqueues a one-off action, the Go form of the
// Scheduled Actions module's scheduleAction(name, payload, {teamId}): set
// opts.RunAt or opts.Delay for when it runs, and opts.Metadata for data such
// as a team ID (returned on Job.Metadata). It is Add by another name.
func (q *Queue) ScheduleAction(ctx context.Context, name string, payload []byte, opts *JobOptions) (*Job, error) {
	return q.Add(ctx, name, payload, opts)
}

// ScheduleRecurringAction runs the action name on every tick of every:
// "hourly", "daily", "weekly", "monthly", or any spec UpsertSchedule takes.
// The action's name is the schedule's key, so calling it again (e.g. at
// every deploy) updates the schedule instead of adding a second one.
func (q *Queue) ScheduleRecurringAction(ctx context.Context, name string, payload []byte, every string, opts *ScheduleOptions) (*Schedule, error) {
	return q.UpsertSchedule(ctx, name, every, name, payload, opts)
}

// scheduleBatch bounds the due schedules one scheduler pass handles.
const scheduleBatch = 100

// missedWalkLimit bounds how many missed ticks a scheduler walks to count them.
const missedWalkLimit = 10000

// runSchedules fires the due ticks of a queue's schedules at Redis time
// now. It returns how many jobs it enqueued and the next tick after now
// (ms, -1 none). Safe to run from any number of processes at once.
func runSchedules(ctx context.Context, st *store.Store, nowArg int64, now time.Time, log *slog.Logger) (fired int, next int64, err error) {
	nowMs := now.UnixMilli()
	ids, ticks, next, err := st.DueSchedules(ctx, nowMs, scheduleBatch)
	if err != nil || len(ids) == 0 {
		return 0, next, err
	}
	recs, err := st.ScheduleDefs(ctx, ids, len(ids))
	if err != nil {
		return 0, next, err
	}
	defs := make(map[string]store.ScheduleRecord, len(recs))
	for _, r := range recs {
		defs[r.Key] = r
	}
	for i, key := range ids {
		rec, ok := defs[key]
		if !ok {
			continue // removed meanwhile
		}
		f, err := planFire(rec, ticks[i], now)
		if err != nil {
			log.Error("hopper: schedule cannot be computed; unscheduling it", "schedule", key, "err", err)
			f = store.Fire{Key: key, DueMs: ticks[i], Def: rec.Def, NextMs: -1}
		}
		code, err := st.FireSchedule(ctx, nowArg, f)
		if err != nil {
			return fired, next, err
		}
		if code == 1 {
			fired++
		}
		if code >= 1 && f.NextMs >= 0 && (next < 0 || f.NextMs < next) {
			next = f.NextMs
		}
		if f.Passed > 0 || !f.Run {
			log.Warn("hopper: schedule ticks missed", "schedule", key, "passed_over", f.Passed, "ran_latest", f.Run)
		}
	}
	return fired, next, nil
}

// planFire decides what to do with the due tick dueMs of a schedule.
func planFire(rec store.ScheduleRecord, dueMs int64, now time.Time) (store.Fire, error) {
	var d schedDef
	if err := json.Unmarshal([]byte(rec.Def), &d); err != nil {
		return store.Fire{}, err
	}
	cs, err := cronspec.Parse(d.Spec, d.TZ)
	if err != nil {
		return store.Fire{}, err
	}
	latest, passed, nxt := cs.Due(time.UnixMilli(dueMs), now, missedWalkLimit)
	run := true
	if MissedPolicy(d.Missed) == MissedSkip && now.Sub(latest) > MissedGrace {
		run = false
	}
	h := d.Job
	h.Created, h.Schedule = now.UnixMilli(), rec.Key
	body, err := wire.Encode(&h, d.Payload)
	if err != nil {
		return store.Fire{}, err
	}
	nextMs := int64(-1)
	if !nxt.IsZero() {
		nextMs = nxt.UnixMilli()
	}
	return store.Fire{Key: rec.Key, DueMs: dueMs, Def: rec.Def, NextMs: nextMs, Run: run, Passed: passed,
		JobID: rec.Key + "@" + strconv.FormatInt(latest.UnixMilli(), 10), Body: body, Priority: d.Priority,
		TickMs: latest.UnixMilli()}, nil
}
