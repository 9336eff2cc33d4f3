// Package store performs all of hopper's Redis I/O for one queue: each method
// runs one transition script (internal/scripts) in one round trip and decodes
// its reply into plain values. It knows nothing of the public API's types.
package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/scripts"
	"github.com/redis/go-redis/v9"
)

// Lease statuses returned by the acknowledging scripts.
const (
	LeaseLost  = 0 // the token no longer holds the job's lease; nothing changed
	LeaseOK    = 1 // the transition happened
	LeaseAgain = 2 // already done with this token (a re-run of the same call)
)

// Remove codes.
const (
	RemoveMissing    = 0
	RemoveDone       = 1
	RemoveActive     = -1
	RemoveWrongState = -2
)

// Store is one queue's Redis access. Safe for concurrent use.
type Store struct {
	c       redis.UniversalClient
	keys    keys.Queue
	scripts map[*scripts.Script][]string // each script's KEYS for this queue
	// calls holds, per script, the start of its EVALSHA command ("evalsha",
	// sha, number of keys, the keys) as interface values built once: boxing
	// the key strings on every call was a third of an add's allocations.
	calls map[*scripts.Script][]any
}

// New returns the store of the queue whose keys are k.
func New(c redis.UniversalClient, k keys.Queue) *Store {
	s := &Store{c: c, keys: k, scripts: make(map[*scripts.Script][]string, len(scripts.All)),
		calls: make(map[*scripts.Script][]any, len(scripts.All))}
	for _, sc := range scripts.All {
		ks := sc.Keys(k)
		s.scripts[sc] = ks
		call := make([]any, 0, 3+len(ks))
		call = append(call, "evalsha", sc.Hash(), len(ks))
		for _, key := range ks {
			call = append(call, key)
		}
		s.calls[sc] = call
	}
	return s
}

// Keys returns the queue's key names.
func (s *Store) Keys() keys.Queue { return s.keys }

// Client returns the Redis client.
func (s *Store) Client() redis.UniversalClient { return s.c }

// scriptCmd returns the EVALSHA command of sc with args, built on the
// script's prebuilt prefix; toEval turns it into the EVAL of the source.
func (s *Store) scriptCmd(sc *scripts.Script, args []any) []any {
	call := s.calls[sc]
	cmd := make([]any, len(call), len(call)+len(args))
	copy(cmd, call)
	return append(cmd, args...)
}

func toEval(sc *scripts.Script, cmd []any) { cmd[0], cmd[1] = "eval", sc.Src }

// run runs a script by its SHA and, if this server has not cached it
// (NOSCRIPT: a restart, a failover, SCRIPT FLUSH), by its source.
func (s *Store) run(ctx context.Context, sc *scripts.Script, args ...any) (any, error) {
	cmd := s.scriptCmd(sc, args)
	v, err := s.c.Do(ctx, cmd...).Result()
	if err != nil && scripts.IsNoScript(err) {
		toEval(sc, cmd)
		v, err = s.c.Do(ctx, cmd...).Result()
	}
	if err != nil {
		return nil, fmt.Errorf("%s script: %w", sc.Name, err)
	}
	return v, nil
}

// NewJob is one job to add.
type NewJob struct {
	ID       string
	Body     []byte
	DelayMs  int64
	RunAtMs  int64
	Priority int
	Unique   string // time-window deduplication key; "" = none
	WindowMs int64
}

// AddResult is the outcome for one added job.
type AddResult struct {
	Added bool
	State string // "" if the duplicate no longer exists
	Body  string // the existing job's body when !Added
	ID    string // the existing job's id when !Added
}

// Add adds jobs atomically.
func (s *Store) Add(ctx context.Context, now int64, jobs []NewJob) ([]AddResult, error) {
	res, _, err := s.AddWait(ctx, now, jobs, 0, 0)
	return res, err
}

// AddWait adds jobs atomically and, if replicas > 0, then waits (Redis
// WAIT, on the same connection, in the same round trip) until that many
// replicas have acknowledged the write, at most timeoutMs (0 = forever). It
// returns how many replicas acknowledged.
func (s *Store) AddWait(ctx context.Context, now int64, jobs []NewJob, replicas int, timeoutMs int64) ([]AddResult, int, error) {
	args := make([]any, 0, 2+7*len(jobs))
	args = append(args, now, len(jobs))
	for _, j := range jobs {
		args = append(args, j.ID, j.Body, j.DelayMs, j.RunAtMs, j.Priority, j.Unique, j.WindowMs)
	}
	var v any
	acked := 0
	var err error
	if replicas <= 0 {
		v, err = s.run(ctx, scripts.Add, args...)
	} else {
		v, acked, err = s.runWait(ctx, scripts.Add, replicas, timeoutMs, args...)
	}
	if err != nil {
		return nil, 0, err
	}
	out, err := addResults(v, len(jobs))
	return out, acked, err
}

// runWait runs a script and WAIT in one pipeline on one connection of the
// node that owns the queue's slot, so WAIT counts the script's writes.
func (s *Store) runWait(ctx context.Context, sc *scripts.Script, replicas int, timeoutMs int64, args ...any) (any, int, error) {
	var node redis.Pipeliner
	switch c := s.c.(type) {
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, s.keys.Key(keys.Meta))
		if err != nil {
			return nil, 0, fmt.Errorf("%s script: %w", sc.Name, err)
		}
		node = n.Pipeline()
	case *redis.Client:
		node = c.Pipeline()
	default:
		return nil, 0, fmt.Errorf("%s script: waiting for replicas needs a *redis.Client or *redis.ClusterClient, not %T", sc.Name, s.c)
	}
	cmd := s.scriptCmd(sc, args)
	for _, eval := range []bool{false, true} {
		if eval {
			toEval(sc, cmd)
		}
		run := node.Do(ctx, cmd...)
		wait := node.Do(ctx, "WAIT", replicas, timeoutMs)
		_, _ = node.Exec(ctx)
		if err := run.Err(); err != nil {
			if !eval && scripts.IsNoScript(err) {
				continue // not cached on this server: send the source
			}
			return nil, 0, fmt.Errorf("%s script: %w", sc.Name, err)
		}
		// The script's writes happened; if WAIT itself failed, none of them
		// is known to have replicated.
		n, _ := wait.Int()
		return run.Val(), n, nil
	}
	panic("unreachable")
}

func addResults(v any, n int) ([]AddResult, error) {
	rows, err := slice(v, -1)
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("add script: bad reply %v", v)
	}
	codes := toStr(rows[0])
	if len(codes) != n {
		return nil, fmt.Errorf("add script: %d results for %d jobs", len(codes), n)
	}
	details := rows[1:]
	take := func(k int) ([]any, error) {
		if len(details) < k {
			return nil, fmt.Errorf("add script: bad reply %v", v)
		}
		d := details[:k]
		details = details[k:]
		return d, nil
	}
	out := make([]AddResult, n)
	for i := range n {
		switch codes[i] {
		case 'w':
			out[i] = AddResult{Added: true, State: "waiting"}
		case 'd':
			out[i] = AddResult{Added: true, State: "delayed"}
		case '+':
			d, err := take(1)
			if err != nil {
				return nil, err
			}
			out[i] = AddResult{Added: true, State: toStr(d[0])}
		case '-':
			d, err := take(3)
			if err != nil {
				return nil, err
			}
			out[i] = AddResult{State: toStr(d[0]), Body: toStr(d[1]), ID: toStr(d[2])}
		default:
			return nil, fmt.Errorf("add script: bad result code %q", codes[i])
		}
	}
	return out, nil
}

// nonce returns a random string for one claim call: part of the lease
// tokens it hands out, so that tokens stay unique when a failover rolls the
// queue's token counter back (see claim in lib.lua).
func nonce() string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	v := rand.Uint32()
	var b [6]byte
	for i := range b {
		b[i] = digits[v&31]
		v >>= 5
	}
	return string(b[:])
}

// Claimed is one job handed to a worker by Fetch.
type Claimed struct {
	ID       string
	Token    string
	Attempts int
	Stalls   int
	Body     string
}

// FetchResult is the reply of Fetch.
type FetchResult struct {
	Paused  bool
	Now     int64 // Redis time of the call, ms
	NextDue int64 // earliest due delayed/failed job, ms; -1 none; only set when fewer than max were claimed
	Jobs    []Claimed
}

// Fetch claims up to max ready jobs with leases of leaseMs.
func (s *Store) Fetch(ctx context.Context, now int64, max int, leaseMs int64) (FetchResult, error) {
	v, err := s.run(ctx, scripts.Fetch, now, max, leaseMs, nonce())
	if err != nil {
		return FetchResult{}, err
	}
	return parseClaim(v)
}

func parseClaim(v any) (FetchResult, error) {
	row, err := slice(v, -1)
	if err != nil || len(row) < 3 || (len(row)-3)%5 != 0 {
		return FetchResult{}, fmt.Errorf("fetch script: bad reply %v", v)
	}
	r := FetchResult{Paused: toInt(row[0]) == 1, Now: toInt(row[1]), NextDue: toInt(row[2])}
	if n := (len(row) - 3) / 5; n > 0 {
		r.Jobs = make([]Claimed, 0, n)
	}
	for i := 3; i < len(row); i += 5 {
		r.Jobs = append(r.Jobs, Claimed{
			ID: toStr(row[i]), Token: toStr(row[i+1]), Attempts: int(toInt(row[i+2])),
			Stalls: int(toInt(row[i+3])), Body: toStr(row[i+4]),
		})
	}
	return r, nil
}

// Ack is one completion.
type Ack struct {
	ID, Token string
	Result    []byte
	KeepCount int
	KeepAgeMs int64
}

// Complete acknowledges completed jobs (one status per ack) and, in the
// same call, claims up to want jobs with leases of leaseMs (want 0: none).
func (s *Store) Complete(ctx context.Context, now int64, acks []Ack, want int, leaseMs int64) ([]int, FetchResult, error) {
	args := make([]any, 0, 5+5*len(acks))
	args = append(args, now, want, leaseMs, len(acks), nonce())
	for _, a := range acks {
		args = append(args, a.ID, a.Token, a.Result, a.KeepCount, a.KeepAgeMs)
	}
	v, err := s.run(ctx, scripts.Complete, args...)
	if err != nil {
		return nil, FetchResult{}, err
	}
	row, err := slice(v, 2)
	if err != nil {
		return nil, FetchResult{}, err
	}
	st, err := ints(row[0], len(acks))
	if err != nil {
		return nil, FetchResult{}, err
	}
	fr, err := parseClaim(row[1])
	if err != nil {
		return nil, FetchResult{}, err
	}
	return st, fr, nil
}

// Retry records a failed attempt (spend) or a snooze (!spend) and schedules
// the job delayMs from now.
func (s *Store) Retry(ctx context.Context, now int64, id, tok string, delayMs int64, errJSON string, spend bool) (int, error) {
	st, err := s.RetryBatch(ctx, now, []Fail{{ID: id, Token: tok, DelayMs: delayMs, ErrJSON: errJSON, Spend: spend}})
	if err != nil {
		return 0, err
	}
	return st[0], nil
}

// Fail is one failed attempt to retry (Spend) or one snooze (!Spend).
type Fail struct {
	ID, Token string
	DelayMs   int64
	ErrJSON   string
	Spend     bool
}

// RetryBatch records failed attempts and snoozes in one call: one lease
// status per job (LeaseOK, LeaseAgain or LeaseLost).
func (s *Store) RetryBatch(ctx context.Context, now int64, fails []Fail) ([]int, error) {
	args := make([]any, 0, 2+5*len(fails))
	args = append(args, now, len(fails))
	for _, f := range fails {
		args = append(args, f.ID, f.Token, f.DelayMs, f.ErrJSON, b2i(f.Spend))
	}
	v, err := s.run(ctx, scripts.Retry, args...)
	if err != nil {
		return nil, err
	}
	return ints(v, len(fails))
}

// Dead moves an active job to the dead-letter set.
func (s *Store) Dead(ctx context.Context, now int64, id, tok, errJSON string, keepCount int, keepAgeMs int64, spend bool) (int, error) {
	v, err := s.run(ctx, scripts.Dead, now, id, tok, errJSON, keepCount, keepAgeMs, b2i(spend))
	if err != nil {
		return 0, err
	}
	return int(toInt(v)), nil
}

// Lease identifies one delivery of a job.
type Lease struct{ ID, Token string }

func leaseArgs(prefix []any, ls []Lease) []any {
	args := make([]any, 0, len(prefix)+1+2*len(ls))
	args = append(args, prefix...)
	args = append(args, len(ls))
	for _, l := range ls {
		args = append(args, l.ID, l.Token)
	}
	return args
}

// Release hands active jobs back to waiting without spending an attempt.
func (s *Store) Release(ctx context.Context, ls []Lease) ([]int, error) {
	v, err := s.run(ctx, scripts.Release, leaseArgs(nil, ls)...)
	if err != nil {
		return nil, err
	}
	return ints(v, len(ls))
}

// Extend extends leases to now+leaseMs; one status per lease.
func (s *Store) Extend(ctx context.Context, now, leaseMs int64, ls []Lease) ([]int, error) {
	v, err := s.run(ctx, scripts.Extend, leaseArgs([]any{now, leaseMs}, ls)...)
	if err != nil {
		return nil, err
	}
	return ints(v, len(ls))
}

// Progress records progress for an active job.
func (s *Store) Progress(ctx context.Context, id, tok string, value []byte) (int, error) {
	v, err := s.run(ctx, scripts.Progress, id, tok, value)
	if err != nil {
		return 0, err
	}
	return int(toInt(v)), nil
}

// Log appends one entry to an active job's log, keeping the last max.
func (s *Store) Log(ctx context.Context, id, tok string, entry []byte, max int) (int, error) {
	v, err := s.run(ctx, scripts.Log, id, tok, entry, max)
	if err != nil {
		return 0, err
	}
	return int(toInt(v)), nil
}

// PromoteResult is the reply of Promote.
type PromoteResult struct {
	Moved     int
	NextDue   int64
	Now       int64
	NextSched int64 // earliest schedule tick, -1 none
	LeaseDue  int64 // earliest lease deadline of an active job, -1 none
	Ready     int64 // jobs ready to fetch (0 while the queue is paused)
	Fresh     bool  // the worker was not registered: its info was not stored if it sent none
	Schedules int64 // schedules stored in the queue (paused ones included)
}

// Promote moves due delayed and failed jobs (at most limit of each) to
// waiting, or the one job id whatever its due time when id is not "".
func (s *Store) Promote(ctx context.Context, now int64, limit int, id string) (PromoteResult, error) {
	return s.PromoteAndRegister(ctx, now, limit, id, "", "", 0)
}

// PromoteAndRegister is Promote that also registers worker workerID with
// info in the queue's worker registry for ttlMs.
func (s *Store) PromoteAndRegister(ctx context.Context, now int64, limit int, id, workerID, info string, ttlMs int64) (PromoteResult, error) {
	v, err := s.run(ctx, scripts.Promote, now, limit, id, workerID, info, ttlMs)
	if err != nil {
		return PromoteResult{}, err
	}
	row, err := slice(v, 8)
	if err != nil {
		return PromoteResult{}, err
	}
	return PromoteResult{Moved: int(toInt(row[0])), NextDue: toInt(row[1]), Now: toInt(row[2]), NextSched: toInt(row[3]),
		LeaseDue: toInt(row[4]), Ready: toInt(row[5]), Fresh: toInt(row[6]) == 1, Schedules: toInt(row[7])}, nil
}

// Recover returns jobs with expired leases to waiting, or dead-letters them
// past maxStalls. It handles at most limit jobs per call.
func (s *Store) Recover(ctx context.Context, now int64, maxStalls, limit, keepCount int, keepAgeMs int64) (requeued, dead []string, err error) {
	v, err := s.run(ctx, scripts.Recover, now, maxStalls, limit, keepCount, keepAgeMs)
	if err != nil {
		return nil, nil, err
	}
	row, err := slice(v, -1)
	if err != nil || len(row) < 2 {
		return nil, nil, fmt.Errorf("recover script: bad reply %v", v)
	}
	nr := int(toInt(row[0]))
	for i, x := range row[2:] {
		if i < nr {
			requeued = append(requeued, toStr(x))
		} else {
			dead = append(dead, toStr(x))
		}
	}
	return requeued, dead, nil
}

// Record is a job as stored.
type Record struct {
	ID         string
	Body       string
	State      string
	Score      int64 // lease deadline, due time or finish time (ms); 0 for waiting
	Attempts   int
	Stalls     int
	StartedMs  int64
	FinishedMs int64
	Result     *string
	Err        string
	Progress   string
	Log        string // newline-terminated JSON entries; only from Get
}

// Get reads one job; it returns nil, nil when there is no such job.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	v, err := s.run(ctx, scripts.Get, id, 1)
	if err != nil {
		return nil, err
	}
	return parseRecord(id, v)
}

// GetMany reads several jobs in one pipeline; missing jobs are skipped.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]*Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	run := func() ([]*redis.Cmd, error) {
		pipe := s.c.Pipeline()
		cmds := make([]*redis.Cmd, len(ids))
		for i, id := range ids {
			cmds[i] = scripts.Get.EvalSha(ctx, pipe, s.scripts[scripts.Get], id, 0)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if scripts.IsNoScript(err) {
		if err = scripts.Get.Load(ctx, s.c).Err(); err == nil {
			cmds, err = run()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("get script: %w", err)
	}
	out := make([]*Record, 0, len(ids))
	for i, c := range cmds {
		r, err := parseRecord(ids[i], c.Val())
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

func parseRecord(id string, v any) (*Record, error) {
	row, err := slice(v, -1)
	if err != nil {
		return nil, err
	}
	if len(row) == 0 {
		return nil, nil
	}
	if len(row) != 11 {
		return nil, fmt.Errorf("get script: bad reply %v", v)
	}
	r := &Record{
		ID: id, Body: toStr(row[0]), State: toStr(row[1]), Score: toInt(row[2]),
		Attempts: int(toInt(row[3])), Stalls: int(toInt(row[4])),
		StartedMs: toInt(row[5]), FinishedMs: toInt(row[6]),
		Err: toStr(row[8]), Progress: toStr(row[9]), Log: toStr(row[10]),
	}
	if row[7] != nil {
		res := toStr(row[7])
		r.Result = &res
	}
	return r, nil
}

// Counts is the number of jobs per state.
type Counts struct {
	Waiting, Active, Delayed, Failed, Completed, Dead int64
	Paused                                            bool
}

// Counts reads the jobs per state at one instant.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	v, err := s.run(ctx, scripts.Counts)
	if err != nil {
		return Counts{}, err
	}
	row, err := slice(v, 7)
	if err != nil {
		return Counts{}, err
	}
	return Counts{
		Waiting: toInt(row[0]), Active: toInt(row[1]), Delayed: toInt(row[2]),
		Failed: toInt(row[3]), Completed: toInt(row[4]), Dead: toInt(row[5]),
		Paused: toInt(row[6]) == 1,
	}, nil
}

// Remove deletes a job; see remove.lua for codes.
func (s *Store) Remove(ctx context.Context, id string, force bool, requireState string) (int, string, error) {
	v, err := s.run(ctx, scripts.Remove, id, b2i(force), requireState)
	if err != nil {
		return 0, "", err
	}
	row, err := slice(v, 2)
	if err != nil {
		return 0, "", err
	}
	return int(toInt(row[0])), toStr(row[1]), nil
}

// Pause pauses (true) or resumes (false) the queue.
func (s *Store) Pause(ctx context.Context, pause bool) error {
	_, err := s.run(ctx, scripts.Pause, b2i(pause))
	return err
}

// DLQRetry moves dead jobs back to waiting: the one id, or up to limit of the
// oldest when id is "". It returns how many moved and how many dead remain.
func (s *Store) DLQRetry(ctx context.Context, id string, limit int) (moved, left int64, err error) {
	return s.retrySet(ctx, id, limit, "dead")
}

// RetryFailed makes failed jobs awaiting their retry (job id, or up to limit
// of the soonest due when id is "") ready now; it returns how many moved and
// how many failed jobs are left.
func (s *Store) RetryFailed(ctx context.Context, id string, limit int) (moved, left int64, err error) {
	return s.retrySet(ctx, id, limit, "failed")
}

// PromoteDelayed makes up to limit of the soonest due delayed jobs ready
// now; it returns how many moved and how many delayed jobs are left.
func (s *Store) PromoteDelayed(ctx context.Context, limit int) (moved, left int64, err error) {
	return s.retrySet(ctx, "", limit, "delayed")
}

// Obliterate deletes every key of the queue unless jobs are active and not
// force; it returns the number of active jobs it found.
func (s *Store) Obliterate(ctx context.Context, force bool) (int64, error) {
	v, err := s.run(ctx, scripts.Oblit, b2i(force))
	if err != nil {
		return 0, err
	}
	return toInt(v), nil
}

func (s *Store) retrySet(ctx context.Context, id string, limit int, set string) (moved, left int64, err error) {
	v, err := s.run(ctx, scripts.Requeue, id, limit, set)
	if err != nil {
		return 0, 0, err
	}
	row, err := slice(v, 2)
	if err != nil {
		return 0, 0, err
	}
	return toInt(row[0]), toInt(row[1]), nil
}

// Clean deletes up to limit of the oldest jobs of set ("dead" or
// "completed") finished at or before beforeMs (-1: any).
func (s *Store) Clean(ctx context.Context, set string, limit int, beforeMs int64) (deleted, left int64, err error) {
	v, err := s.run(ctx, scripts.Clean, set, limit, beforeMs)
	if err != nil {
		return 0, 0, err
	}
	row, err := slice(v, 2)
	if err != nil {
		return 0, 0, err
	}
	return toInt(row[0]), toInt(row[1]), nil
}

// Drain deletes up to limit waiting (and, if delayed, delayed) jobs; it
// returns how many it deleted and how many are left.
func (s *Store) Drain(ctx context.Context, limit int, delayed bool) (deleted, left int64, err error) {
	v, err := s.run(ctx, scripts.Drain, limit, b2i(delayed))
	if err != nil {
		return 0, 0, err
	}
	row, err := slice(v, 2)
	if err != nil {
		return 0, 0, err
	}
	return toInt(row[0]), toInt(row[1]), nil
}

// RangeNewest returns ids of a sorted-set part, newest (highest score) first,
// from offset for up to limit ids.
func (s *Store) RangeNewest(ctx context.Context, part int, offset, limit int64) ([]string, error) {
	ids, err := s.c.ZRevRange(ctx, s.keys.Key(part), offset, offset+limit-1).Result()
	if err != nil {
		return nil, fmt.Errorf("zrevrange: %w", err)
	}
	return ids, nil
}

// Card returns the size of a sorted-set part.
func (s *Store) Card(ctx context.Context, part int) (int64, error) {
	n, err := s.c.ZCard(ctx, s.keys.Key(part)).Result()
	if err != nil {
		return 0, fmt.Errorf("zcard: %w", err)
	}
	return n, nil
}

// SetSchedule writes a schedule definition and its next tick (-1: none),
// if the stored definition is still expect ("" = no check). It returns 1
// created, 0 updated, -1 refused (concurrent change).
func (s *Store) SetSchedule(ctx context.Context, key, def string, nextMs int64, expect string) (int, error) {
	v, err := s.run(ctx, scripts.SchedSet, key, def, nextMs, expect)
	if err != nil {
		return 0, err
	}
	return int(toInt(v)), nil
}

// RemoveSchedule deletes a schedule; false if there was none.
func (s *Store) RemoveSchedule(ctx context.Context, key string) (bool, error) {
	v, err := s.run(ctx, scripts.SchedDel, key)
	if err != nil {
		return false, err
	}
	return toInt(v) == 1, nil
}

// Fire is one schedule tick to handle.
type Fire struct {
	Key      string
	DueMs    int64 // the schedule's next tick as read
	Def      string
	NextMs   int64 // -1: no further tick
	Run      bool
	Passed   int
	JobID    string
	Body     []byte
	Priority int
	TickMs   int64
}

// FireSchedule handles one due tick; see sched_fire.lua for the codes.
func (s *Store) FireSchedule(ctx context.Context, now int64, f Fire) (int, error) {
	v, err := s.run(ctx, scripts.SchedRun, now, f.Key, f.DueMs, f.Def, f.NextMs, b2i(f.Run), f.Passed,
		f.JobID, f.Body, f.Priority, f.TickMs)
	if err != nil {
		return 0, err
	}
	return int(toInt(v)), nil
}

// DueSchedules returns up to limit schedule keys whose next tick is at or
// before nowMs, with their ticks, and the earliest tick after nowMs (-1: none).
func (s *Store) DueSchedules(ctx context.Context, nowMs int64, limit int) (ids []string, ticks []int64, next int64, err error) {
	k := s.keys.Key(keys.SchedNext)
	pipe := s.c.Pipeline()
	due := pipe.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(nowMs, 10), Count: int64(limit)})
	after := pipe.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(nowMs, 10), Max: "+inf", Count: 1})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, 0, fmt.Errorf("due schedules: %w", err)
	}
	for _, z := range due.Val() {
		ids = append(ids, z.Member.(string))
		ticks = append(ticks, int64(z.Score))
	}
	next = -1
	if a := after.Val(); len(a) > 0 {
		next = int64(a[0].Score)
	}
	return ids, ticks, next, nil
}

// ScheduleDefs reads schedule definitions, run states and next ticks for
// keys (all schedules when keys is nil, at most limit).
func (s *Store) ScheduleDefs(ctx context.Context, ids []string, limit int) ([]ScheduleRecord, error) {
	sk, rk, nk := s.keys.Key(keys.Sched), s.keys.Key(keys.SchedRun), s.keys.Key(keys.SchedNext)
	if ids == nil {
		var err error
		ids, err = s.c.HKeys(ctx, sk).Result()
		if err != nil {
			return nil, fmt.Errorf("schedules: %w", err)
		}
		if len(ids) > limit {
			ids = ids[:limit]
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	defs := pipe.HMGet(ctx, sk, ids...)
	runs := pipe.HMGet(ctx, rk, ids...)
	nexts := make([]*redis.FloatCmd, len(ids))
	for i, key := range ids {
		nexts[i] = pipe.ZScore(ctx, nk, key)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	out := make([]ScheduleRecord, 0, len(ids))
	for i, key := range ids {
		def := defs.Val()[i]
		if def == nil {
			continue
		}
		r := ScheduleRecord{Key: key, Def: toStr(def), Run: toStr(runs.Val()[i]), NextMs: -1}
		if nexts[i].Err() == nil {
			r.NextMs = int64(nexts[i].Val())
		}
		out = append(out, r)
	}
	return out, nil
}

// ScheduleRecord is a stored schedule.
type ScheduleRecord struct {
	Key    string
	Def    string
	Run    string // run state JSON, "" if never run
	NextMs int64  // -1 when not scheduled
}

// Unregister removes a worker from the queue's registry.
func (s *Store) Unregister(ctx context.Context, workerID string) error {
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.keys.Key(keys.Workers), workerID)
		p.HDel(ctx, s.keys.Key(keys.WorkerInfo), workerID)
		return nil
	})
	return err
}

// StatsRecord is the raw material of Queue.Stats.
type StatsRecord struct {
	Ring       map[string]string // the stats hash
	Workers    []string          // worker info JSON, live ones
	ExpiresMs  []int64           // when their registrations expire (ms)
	OldestBody string            // body of the oldest waiting job ("" if none)
}

// Stats reads the per-minute ring, the live workers (registration not
// expired at nowMs) and the oldest waiting job: one pipeline, then one
// round trip each for the workers' info and the oldest job's body.
func (s *Store) Stats(ctx context.Context, nowMs int64) (StatsRecord, error) {
	pipe := s.c.Pipeline()
	ring := pipe.HGetAll(ctx, s.keys.Key(keys.Stats))
	live := pipe.ZRangeByScoreWithScores(ctx, s.keys.Key(keys.Workers), &redis.ZRangeBy{
		Min: strconv.FormatInt(nowMs, 10), Max: "+inf", Count: 1000})
	oldest := pipe.LIndex(ctx, s.keys.Key(keys.Wait), -1)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return StatsRecord{}, fmt.Errorf("stats: %w", err)
	}
	r := StatsRecord{Ring: ring.Val()}
	if zs := live.Val(); len(zs) > 0 {
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = z.Member.(string)
		}
		infos, err := s.c.HMGet(ctx, s.keys.Key(keys.WorkerInfo), ids...).Result()
		if err != nil {
			return r, fmt.Errorf("stats: %w", err)
		}
		for i, v := range infos {
			if v != nil {
				r.Workers = append(r.Workers, toStr(v))
				r.ExpiresMs = append(r.ExpiresMs, int64(zs[i].Score))
			}
		}
	}
	if id := oldest.Val(); id != "" {
		body, err := s.c.HGet(ctx, s.keys.Key(keys.Jobs), id).Result()
		if err != nil && err != redis.Nil {
			return r, fmt.Errorf("stats: %w", err)
		}
		r.OldestBody = body
	}
	return r, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func slice(v any, n int) ([]any, error) {
	s, ok := v.([]any)
	if !ok || (n >= 0 && len(s) != n) {
		return nil, fmt.Errorf("unexpected script reply %T %v", v, v)
	}
	return s, nil
}

func ints(v any, n int) ([]int, error) {
	s, err := slice(v, n)
	if err != nil {
		return nil, err
	}
	out := make([]int, n)
	for i, x := range s {
		out[i] = int(toInt(x))
	}
	return out, nil
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func toStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// EventEntry is one entry of the event stream: one event kind for a batch
// of jobs (see emit in lib.lua).
type EventEntry struct {
	ID   string // stream entry id
	Kind string
	Jobs string // ids separated by spaces
	Data string // JSON array of strings parallel to Jobs, or ""
}

// ReadEvents returns up to count stream entries after the entry id after,
// waiting up to block for one when there is none (block < 0: do not wait).
func (s *Store) ReadEvents(ctx context.Context, after string, count int64, block time.Duration) ([]EventEntry, error) {
	args := &redis.XReadArgs{Streams: []string{s.keys.Key(keys.Events), after}, Count: count, Block: block}
	if block < 0 {
		args.Block = -1
	}
	res, err := s.c.XRead(ctx, args).Result()
	if err == redis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	var out []EventEntry
	for _, st := range res {
		for _, m := range st.Messages {
			out = append(out, eventEntry(m))
		}
	}
	return out, nil
}

// RangeEvents returns up to count entries from start to end (inclusive
// stream ids, "-" and "+" for the ends), oldest first.
func (s *Store) RangeEvents(ctx context.Context, start, end string, count int64) ([]EventEntry, error) {
	res, err := s.c.XRangeN(ctx, s.keys.Key(keys.Events), start, end, count).Result()
	if err != nil {
		return nil, fmt.Errorf("range events: %w", err)
	}
	out := make([]EventEntry, len(res))
	for i, m := range res {
		out[i] = eventEntry(m)
	}
	return out, nil
}

// RecentEvents returns up to count of the newest stream entries, newest
// first.
func (s *Store) RecentEvents(ctx context.Context, count int64) ([]EventEntry, error) {
	res, err := s.c.XRevRangeN(ctx, s.keys.Key(keys.Events), "+", "-", count).Result()
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out := make([]EventEntry, len(res))
	for i, m := range res {
		out[i] = eventEntry(m)
	}
	return out, nil
}

// LastEventID returns the id of the stream's newest entry, or "0-0" when
// the stream is empty or absent.
func (s *Store) LastEventID(ctx context.Context) (string, error) {
	res, err := s.c.XRevRangeN(ctx, s.keys.Key(keys.Events), "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read events: %w", err)
	}
	if len(res) == 0 {
		return "0-0", nil
	}
	return res[0].ID, nil
}

// SetEventsMax sets the event stream's approximate length cap (0 = off) and
// trims the stream to it.
func (s *Store) SetEventsMax(ctx context.Context, n int64) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.keys.Key(keys.Meta), "events", n)
		if n == 0 {
			p.Del(ctx, s.keys.Key(keys.Events))
		} else {
			p.XTrimMaxLenApprox(ctx, s.keys.Key(keys.Events), n, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set events cap: %w", err)
	}
	return nil
}

// EventsMax returns the event stream's cap as stored, and false when none is
// stored (the scripts' default applies).
func (s *Store) EventsMax(ctx context.Context) (int64, bool, error) {
	v, err := s.c.HGet(ctx, s.keys.Key(keys.Meta), "events").Int64()
	if err == redis.Nil {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read events cap: %w", err)
	}
	return v, true, nil
}

func eventEntry(m redis.XMessage) EventEntry {
	e := EventEntry{ID: m.ID}
	e.Kind, _ = m.Values["t"].(string)
	e.Jobs, _ = m.Values["j"].(string)
	e.Data, _ = m.Values["d"].(string)
	return e
}
