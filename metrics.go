package hopper

import (
	"context"
	"fmt"
)

// Counts is the number of jobs of a queue per state, read at one instant
// (BullMQ's getJobCounts).
type Counts struct {
	Waiting   int64 // ready jobs, including those held by a pause
	Active    int64
	Delayed   int64
	Failed    int64 // failed attempts awaiting their retry
	Completed int64 // kept per retention
	Dead      int64 // the dead-letter queue
	Paused    bool  // the queue is paused: Waiting jobs are held
}

// Counts returns the queue's job counts per state, in one round trip,
// O(1) in Redis.
func (q *Queue) Counts(ctx context.Context) (Counts, error) {
	c, err := q.st.Counts(ctx)
	if err != nil {
		return Counts{}, fmt.Errorf("hopper: counts of queue %s: %w", q.name, err)
	}
	return Counts{Waiting: c.Waiting, Active: c.Active, Delayed: c.Delayed, Failed: c.Failed,
		Completed: c.Completed, Dead: c.Dead, Paused: c.Paused}, nil
}
