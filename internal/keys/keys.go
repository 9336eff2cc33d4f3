// Package keys names every Redis key hopper uses. It is the only place that
// builds key strings; all functions are pure.
//
// Layout: <prefix>:{<queue>}:<part>. The queue name sits in a Redis Cluster
// hash tag, so every key of one queue lives in one slot and every script can
// run on a cluster node without CROSSSLOT errors.
package keys

// Parts of a queue's key space, in the order scripts receive them as KEYS.
// The order is part of the script protocol (see internal/scripts/lib.lua):
// change both together.
const (
	Jobs       = iota // hash id -> header "\n" payload (immutable after add)
	Wait              // list of ready job ids without priority (LPUSH in, RPOP out)
	Prio              // zset of ready job ids with a priority, score priority<<32|seq
	Active            // zset id -> lease deadline (ms)
	Delayed           // zset id -> due time (ms), producer delays and snoozes
	Failed            // zset id -> retry due time (ms), failed attempts awaiting retry
	Completed         // zset id -> finished time (ms)
	Dead              // zset id -> time of death (ms): the dead-letter queue
	Marker            // zset wake-up marker: "0"@0 = work ready, "d"@t = next due time
	Meta              // hash: paused, seq, lease counters
	Pri               // hash id -> priority (only for prioritized jobs)
	Run               // hash id -> run state "<a|i>|attempts|stalls|token|started ms|finished ms" (once fetched)
	Res               // hash id -> result bytes
	Err               // hash id -> last error (JSON)
	Prog              // hash id -> progress (JSON)
	Sched             // hash schedule key -> schedule definition (JSON)
	SchedNext         // zset schedule key -> next tick (ms); absent while paused
	SchedRun          // hash schedule key -> run state (JSON: last tick, last job, runs, skipped)
	Uniq              // hash unique key -> "<expiry ms>|<job id>" (time-window deduplication)
	UniqExp           // zset unique key -> expiry (ms), to trim expired entries
	Stats             // hash: per-minute counters, a 60-slot ring (m<slot> minute, c<slot> completed, f<slot> failed)
	Workers           // zset worker id -> registration expiry (ms)
	WorkerInfo        // hash worker id -> worker process info (JSON)
	Logs              // hash id -> log lines a handler wrote (JSON array, bounded per job)
	Events            // stream of job events (Queue.Events), capped at about meta "events" entries
	NumParts
)

var names = [NumParts]string{
	Jobs: "jobs", Wait: "wait", Prio: "prio", Active: "active", Delayed: "delayed",
	Failed: "failed", Completed: "completed", Dead: "dead", Marker: "marker", Meta: "meta",
	Pri: "pri", Run: "run", Res: "res", Err: "err", Prog: "prog", Sched: "sched", SchedNext: "schednext",
	SchedRun: "schedrun", Uniq: "uniq", UniqExp: "uniqexp", Stats: "stats", Workers: "workers",
	WorkerInfo: "workerinfo", Logs: "logs", Events: "events",
}

// PartName returns the suffix of part p.
func PartName(p int) string { return names[p] }

// Queue holds the key names of one queue.
type Queue struct {
	base string // "<prefix>:{<queue>}:"
	all  []string
}

// New returns the key names for queue name under prefix. Both must already be
// validated (see CheckName); New does not check them.
func New(prefix, name string) Queue {
	base := prefix + ":{" + name + "}:"
	all := make([]string, NumParts)
	for i, n := range names {
		all[i] = base + n
	}
	return Queue{base: base, all: all}
}

// All returns every key of the queue in script order. The slice is shared:
// callers must not modify it.
func (q Queue) All() []string { return q.all }

// Key returns the key of part p.
func (q Queue) Key(p int) string { return q.all[p] }

// Wake returns the per-worker wake-up key a worker blocks on beside the
// queue's marker, so that it can interrupt its own blocking read on shutdown.
func (q Queue) Wake(workerID string) string { return q.base + "wake:" + workerID }

// Registry returns the key of the set of queue names used under prefix.
// It lies outside every queue's hash slot and is written by its own command,
// never by a job script.
func Registry(prefix string) string { return prefix + ":queues" }

// Base returns "<prefix>:{<queue>}:".
func (q Queue) Base() string { return q.base }
