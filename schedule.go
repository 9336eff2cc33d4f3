package hopper

import (
	"context"
	"fmt"
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
