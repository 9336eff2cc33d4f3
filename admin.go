package hopper

import (
	"context"
	"fmt"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/redis/go-redis/v9"
)

// Jobs lists up to limit jobs in state, skipping offset of them; limit is
// clamped to 1..MaxPageSize. Order: waiting jobs newest first (jobs without
// priority, then prioritized ones); active, delayed and failed jobs by the
// time they are due (lease expiry or run time), soonest first; completed and
// dead jobs newest first. Two round trips; a job that changes state between
// them is left out of the page.
func (q *Queue) Jobs(ctx context.Context, state State, offset, limit int) ([]*Job, error) {
	limit = min(max(limit, 1), MaxPageSize)
	offset = max(offset, 0)
	var ids []string
	var err error
	c := q.st.Client()
	k := q.st.Keys()
	start, stop := int64(offset), int64(offset+limit-1)
	switch state {
	case StateWaiting:
		ids, err = q.waitingPage(ctx, start, stop)
	case StateActive, StateDelayed, StateFailed:
		part := map[State]int{StateActive: keys.Active, StateDelayed: keys.Delayed, StateFailed: keys.Failed}[state]
		ids, err = c.ZRange(ctx, k.Key(part), start, stop).Result()
	case StateCompleted, StateDead:
		part := map[State]int{StateCompleted: keys.Completed, StateDead: keys.Dead}[state]
		ids, err = c.ZRevRange(ctx, k.Key(part), start, stop).Result()
	default:
		return nil, invalid("state", state, "must be one of waiting, active, delayed, failed, completed, dead")
	}
	if err != nil {
		return nil, fmt.Errorf("hopper: list %s jobs of %s: %w", state, q.name, err)
	}
	recs, err := q.st.GetMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("hopper: list %s jobs of %s: %w", state, q.name, err)
	}
	out := make([]*Job, 0, len(recs))
	for _, r := range recs {
		if r.State != string(state) {
			continue
		}
		j, err := jobFromRecord(q.name, r)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// waitingPage pages through the wait list (index 0 = newest) and then the
// prio set.
func (q *Queue) waitingPage(ctx context.Context, start, stop int64) ([]string, error) {
	c, k := q.st.Client(), q.st.Keys()
	pipe := c.Pipeline()
	list := pipe.LRange(ctx, k.Key(keys.Wait), start, stop)
	n := pipe.LLen(ctx, k.Key(keys.Wait))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	ids := list.Val()
	if int64(len(ids)) > stop-start {
		return ids, nil
	}
	pstart := max(start-n.Val(), 0)
	more, err := c.ZRange(ctx, k.Key(keys.Prio), pstart, pstart+(stop-start)-int64(len(ids))).Result()
	if err != nil {
		return nil, err
	}
	return append(ids, more...), nil
}

// register records the queue's name in its prefix's registry (once per
// Queue or Worker value).
func register(ctx context.Context, c redis.UniversalClient, prefix string, names ...string) error {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	return c.SAdd(ctx, keys.Registry(prefix), args...).Err()
}

// ListQueues returns the names of the queues that have been used under
// prefix ("" = DefaultPrefix): every queue a Queue added a job to or a
// Worker served. It reads one registry key (never KEYS or SCAN).
func ListQueues(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if why := keys.CheckPrefix(prefix); why != "" {
		return nil, invalid("prefix", prefix, "%s", why)
	}
	names, err := client.SMembers(ctx, keys.Registry(prefix)).Result()
	if err != nil {
		return nil, fmt.Errorf("hopper: list queues: %w", err)
	}
	return names, nil
}

// adminBatch bounds the jobs one Clean or Drain script call handles.
const adminBatch = 500

// Clean deletes completed or dead jobs that finished at or before
// now-olderThan (olderThan 0: any age), oldest first, at most limit of them
// (limit <= 0: no limit), in script calls of at most 500 jobs. It returns
// how many it deleted. Other states are refused with a *ValidationError.
func (q *Queue) Clean(ctx context.Context, state State, olderThan time.Duration, limit int) (int64, error) {
	if state != StateCompleted && state != StateDead {
		return 0, invalid("state", state, "Clean takes completed or dead")
	}
	if olderThan < 0 {
		return 0, invalid("olderThan", olderThan, "must not be negative")
	}
	before := int64(-1)
	if olderThan > 0 {
		before = q.clock().Add(-olderThan).UnixMilli()
	}
	var total int64
	for limit <= 0 || total < int64(limit) {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("hopper: clean %s jobs of %s: %w", state, q.name, err)
		}
		n := adminBatch
		if limit > 0 {
			n = min(n, limit-int(total))
		}
		deleted, _, err := q.st.Clean(ctx, string(state), n, before)
		if err != nil {
			return total, fmt.Errorf("hopper: clean %s jobs of %s: %w", state, q.name, err)
		}
		total += deleted
		if deleted < int64(n) {
			break
		}
	}
	return total, nil
}

// Drain deletes every waiting job, and with delayed also every delayed job,
// in script calls of at most 500 jobs, and returns how many it deleted.
// Active, failed (awaiting retry), completed and dead jobs stay. Jobs added
// while it runs may be deleted too; it stops when none are left.
func (q *Queue) Drain(ctx context.Context, delayed bool) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("hopper: drain %s: %w", q.name, err)
		}
		deleted, left, err := q.st.Drain(ctx, adminBatch, delayed)
		if err != nil {
			return total, fmt.Errorf("hopper: drain %s: %w", q.name, err)
		}
		total += deleted
		if left == 0 || deleted == 0 {
			return total, nil
		}
	}
}

// Retry makes a dead or failed job ready now. A dead job starts afresh, as
// with DeadLetterQueue.Retry (attempts and stalls reset, last error kept); a
// failed job awaiting its retry skips the rest of its backoff and keeps the
// attempts it made. ErrJobNotFound if the job is in neither state.
func (q *Queue) Retry(ctx context.Context, id string) error {
	moved, _, err := q.st.RetryFailed(ctx, id, 1)
	if err == nil && moved == 0 {
		moved, _, err = q.st.DLQRetry(ctx, id, 1)
	}
	if err != nil {
		return fmt.Errorf("hopper: retry job %s: %w", id, err)
	}
	if moved == 0 {
		return fmt.Errorf("%w: no failed or dead job %s in queue %s", ErrJobNotFound, id, q.name)
	}
	return nil
}

// RetryAll makes every job that was failed (StateFailed: awaiting its
// retry) or dead (StateDead) when the call started ready now, as Retry does
// one, in script calls of at most 500 jobs, and returns how many moved.
// Other states are refused with a *ValidationError. On error, the jobs moved
// so far stay moved.
func (q *Queue) RetryAll(ctx context.Context, state State) (int64, error) {
	var part int
	var step func() (int64, int64, error)
	switch state {
	case StateFailed:
		part = keys.Failed
		step = func() (int64, int64, error) { return q.st.RetryFailed(ctx, "", adminBatch) }
	case StateDead:
		part = keys.Dead
		step = func() (int64, int64, error) { return q.st.DLQRetry(ctx, "", adminBatch) }
	default:
		return 0, invalid("state", state, "RetryAll takes failed or dead")
	}
	target, err := q.st.Card(ctx, part)
	if err != nil {
		return 0, fmt.Errorf("hopper: retry %s jobs of %s: %w", state, q.name, err)
	}
	var total int64
	for total < target {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("hopper: retry %s jobs of %s: %w", state, q.name, err)
		}
		n, left, err := step()
		if err != nil {
			return total, fmt.Errorf("hopper: retry %s jobs of %s: %w", state, q.name, err)
		}
		total += n
		if n == 0 || left == 0 {
			break
		}
	}
	return total, nil
}

// PromoteAll makes every job that was delayed when the call started ready
// now, soonest due first, in script calls of at most 500 jobs, and returns
// how many moved. Snoozed jobs (RetryAfter) are delayed jobs too.
func (q *Queue) PromoteAll(ctx context.Context) (int64, error) {
	target, err := q.st.Card(ctx, keys.Delayed)
	if err != nil {
		return 0, fmt.Errorf("hopper: promote delayed jobs of %s: %w", q.name, err)
	}
	var total int64
	for total < target {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("hopper: promote delayed jobs of %s: %w", q.name, err)
		}
		n, left, err := q.st.PromoteDelayed(ctx, int(min(int64(adminBatch), target-total)))
		if err != nil {
			return total, fmt.Errorf("hopper: promote delayed jobs of %s: %w", q.name, err)
		}
		total += n
		if n == 0 || left == 0 {
			break
		}
	}
	return total, nil
}

// ObliterateOptions are the options of Queue.Obliterate.
type ObliterateOptions struct {
	// Force deletes the queue even while jobs are active: their workers'
	// acknowledgements then fail with ErrLeaseLost.
	Force bool
}

// Obliterate deletes the queue entirely: every job in every state, its
// schedules, statistics, events, pause flag and settings, and its name from
// the prefix's registry (ListQueues). Without Force it refuses with an error
// wrapping ErrJobActive while any job is active, deleting nothing. It runs
// in one script of O(number of keys): Redis frees large keys in the
// background (UNLINK). Stop the queue's workers first: a running worker or
// producer recreates the queue's keys and registry entry as it goes.
func (q *Queue) Obliterate(ctx context.Context, opts *ObliterateOptions) error {
	force := opts != nil && opts.Force
	active, err := q.st.Obliterate(ctx, force)
	if err != nil {
		return fmt.Errorf("hopper: obliterate %s: %w", q.name, err)
	}
	if active > 0 && !force {
		return fmt.Errorf("%w: queue %s has %d active jobs (use Force)", ErrJobActive, q.name, active)
	}
	if err := q.st.Client().SRem(ctx, keys.Registry(q.cfg.Prefix), q.name).Err(); err != nil {
		return fmt.Errorf("hopper: obliterate %s: unregister: %w", q.name, err)
	}
	q.registered.Store(false)
	return nil
}
