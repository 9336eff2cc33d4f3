package hopper

import (
	"context"
	"fmt"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
)

// MaxPageSize bounds the page size of listing calls; larger requests are
// clamped to it.
const MaxPageSize = 1000

// dlqBatch bounds the jobs one retry-all or purge script call handles.
const dlqBatch = 500

// DeadLetterQueue is the queue's set of dead jobs: those whose attempts ran
// out, that failed with a Permanent error, that stalled more than
// WorkerConfig.MaxStalls times, or that no handler accepted. Each keeps its
// last error, stack trace, attempt count and the reason it died. Its size
// and age are bounded by KeepDead. Safe for concurrent use.
type DeadLetterQueue struct{ q *Queue }

// DeadLetters returns the queue's dead-letter queue.
func (q *Queue) DeadLetters() *DeadLetterQueue { return &DeadLetterQueue{q: q} }

// Len returns the number of dead jobs.
func (d *DeadLetterQueue) Len(ctx context.Context) (int64, error) {
	n, err := d.q.st.Card(ctx, keys.Dead)
	if err != nil {
		return 0, fmt.Errorf("hopper: dead-letter queue of %s: %w", d.q.name, err)
	}
	return n, nil
}

// List returns up to limit dead jobs, newest first, skipping offset of them.
// limit is clamped to 1..MaxPageSize. Two round trips.
func (d *DeadLetterQueue) List(ctx context.Context, offset, limit int) ([]*Job, error) {
	limit = min(max(limit, 1), MaxPageSize)
	offset = max(offset, 0)
	ids, err := d.q.st.RangeNewest(ctx, keys.Dead, int64(offset), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("hopper: list dead jobs of %s: %w", d.q.name, err)
	}
	recs, err := d.q.st.GetMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("hopper: list dead jobs of %s: %w", d.q.name, err)
	}
	out := make([]*Job, 0, len(recs))
	for _, r := range recs {
		if r.State != string(StateDead) { // retried or removed between the two calls
			continue
		}
		j, err := jobFromRecord(d.q.name, r)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// Get returns dead job id; ErrJobNotFound if it is not in the dead-letter
// queue.
func (d *DeadLetterQueue) Get(ctx context.Context, id string) (*Job, error) {
	j, err := d.q.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State != StateDead {
		return nil, fmt.Errorf("%w: job %s is %s, not dead", ErrJobNotFound, id, j.State)
	}
	return j, nil
}

// Retry moves dead job id back to waiting with its attempts and stalls reset
// (its last error is kept). ErrJobNotFound if it is not dead.
func (d *DeadLetterQueue) Retry(ctx context.Context, id string) error {
	moved, _, err := d.q.st.DLQRetry(ctx, id, 1)
	if err != nil {
		return fmt.Errorf("hopper: retry dead job %s: %w", id, err)
	}
	if moved == 0 {
		return fmt.Errorf("%w: no dead job %s in queue %s", ErrJobNotFound, id, d.q.name)
	}
	return nil
}

// RetryAll moves every job that was dead when the call started back to
// waiting, oldest first, in script calls of at most 500 jobs, and returns
// how many moved. On error, the jobs moved so far stay moved.
func (d *DeadLetterQueue) RetryAll(ctx context.Context) (int64, error) {
	return d.batches(ctx, "retry dead jobs", func() (int64, int64, error) {
		return d.q.st.DLQRetry(ctx, "", dlqBatch)
	})
}

// Delete removes dead job id and its data. ErrJobNotFound if it is not dead.
func (d *DeadLetterQueue) Delete(ctx context.Context, id string) error {
	code, _, err := d.q.st.Remove(ctx, id, false, string(StateDead))
	if err != nil {
		return fmt.Errorf("hopper: delete dead job %s: %w", id, err)
	}
	if code != store.RemoveDone {
		return fmt.Errorf("%w: no dead job %s in queue %s", ErrJobNotFound, id, d.q.name)
	}
	return nil
}

// Purge deletes every job that was dead when the call started, in script
// calls of at most 500 jobs, and returns how many it deleted.
func (d *DeadLetterQueue) Purge(ctx context.Context) (int64, error) {
	return d.batches(ctx, "purge dead jobs", func() (int64, int64, error) {
		return d.q.st.Clean(ctx, "dead", dlqBatch, -1)
	})
}

// batches runs step until it has handled the set's size at the start, or the
// set is empty, so that jobs dying meanwhile cannot keep it going forever.
func (d *DeadLetterQueue) batches(ctx context.Context, op string, step func() (done, left int64, err error)) (int64, error) {
	target, err := d.Len(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for total < target {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("hopper: %s of %s: %w", op, d.q.name, err)
		}
		n, left, err := step()
		if err != nil {
			return total, fmt.Errorf("hopper: %s of %s: %w", op, d.q.name, err)
		}
		total += n
		if n == 0 || left == 0 {
			break
		}
	}
	return total, nil
}
