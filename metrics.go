package hopper

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hopperq/hopper/internal/wire"
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

// Stats is a queue's operational picture: counts per state, the age of the
// oldest waiting job, throughput per minute for the last hour, and the live
// worker processes.
type Stats struct {
	Counts
	// OldestWaiting is the age (since it was added) of the oldest waiting job
	// without a priority; 0 if there is none.
	OldestWaiting time.Duration
	// Minutes holds the last 60 minutes, oldest first, the current (partial)
	// minute last.
	Minutes []MinuteStats
	// Workers lists the worker processes serving the queue: each refreshes
	// its registration at every maintenance pass (at least every 4
	// PollIntervals) and drops out 12 PollIntervals after its last one, or
	// at once when it shuts down.
	Workers []WorkerInfo
}

// MinuteStats counts the attempts that ended in one minute.
type MinuteStats struct {
	Start     time.Time
	Completed int64
	Failed    int64 // failed attempts, whether retried or dead-lettered
}

// WorkerInfo describes a live worker process, as it registered itself.
type WorkerInfo struct {
	ID          string
	Host        string
	PID         int
	Concurrency int
	Active      int // jobs running at its last maintenance pass
	Queues      []string
	StartedAt   time.Time
	LastSeen    time.Time
}

// Stats returns the queue's counts, oldest waiting age, per-minute
// throughput for the last hour and live workers. The per-minute counters are
// written with the acknowledgements (one HINCRBY per ack batch) in a ring of
// 60 slots, so they cost next to nothing and never grow. Up to four round
// trips. The minutes are those of the caller's clock (the counters use the
// Redis server's): keep clocks in sync.
func (q *Queue) Stats(ctx context.Context) (*Stats, error) {
	c, err := q.Counts(ctx)
	if err != nil {
		return nil, err
	}
	now := q.clock()
	rec, err := q.st.Stats(ctx, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("hopper: stats of queue %s: %w", q.name, err)
	}
	s := &Stats{Counts: c, Minutes: make([]MinuteStats, 0, 60)}
	cur := now.UnixMilli() / 60000
	for m := cur - 59; m <= cur; m++ {
		slot := strconv.FormatInt(m%60, 10)
		ms := MinuteStats{Start: time.UnixMilli(m * 60000)}
		if rec.Ring["m"+slot] == strconv.FormatInt(m, 10) {
			ms.Completed, _ = strconv.ParseInt(rec.Ring["c"+slot], 10, 64)
			ms.Failed, _ = strconv.ParseInt(rec.Ring["f"+slot], 10, 64)
		}
		s.Minutes = append(s.Minutes, ms)
	}
	for i, raw := range rec.Workers {
		var wi workerInfo
		if json.Unmarshal([]byte(raw), &wi) != nil {
			continue
		}
		s.Workers = append(s.Workers, WorkerInfo{ID: wi.ID, Host: wi.Host, PID: wi.PID, Concurrency: wi.Concurrency,
			Active: wi.Active, Queues: wi.Queues, StartedAt: msToTime(wi.Started),
			LastSeen: msToTime(rec.ExpiresMs[i] - wi.TTL)})
	}
	if rec.OldestBody != "" {
		if h, _, err := wire.Decode(rec.OldestBody); err == nil && h.Created > 0 {
			s.OldestWaiting = max(now.Sub(time.UnixMilli(h.Created)), 0)
		}
	}
	return s, nil
}
