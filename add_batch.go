package hopper

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/hopperq/hopper/internal/store"
)

// Concurrent adds to one Queue are coalesced: while one add script call is
// in flight, the adds that arrive queue up and go out together in the next
// call, so N goroutines adding at once cost about one script call per round
// trip instead of N. There is no background goroutine: the caller that finds
// no call in flight sends (it "leads"), and when its call returns it hands
// the lead to the oldest queued caller. A lone add is sent at once.

// maxCoalescedJobs bounds the jobs one coalesced add call carries.
const maxCoalescedJobs = 1000

type addBatcher struct {
	mu      sync.Mutex
	busy    bool // a leader is sending
	pending []*addReq
}

type addReq struct {
	ctx   context.Context
	jobs  []store.NewJob
	res   []store.AddResult
	acked int // replicas that acknowledged the call (QueueConfig.WaitReplicas)
	err   error
	done  chan struct{} // closed when res/err are set
	lead  chan struct{} // receives the lead (buffered 1)
}

// submit sends jobs (already validated and deduplicated within the call)
// in a coalesced add call and returns their results and how many replicas
// acknowledged the call.
func (q *Queue) submit(ctx context.Context, jobs []store.NewJob) ([]store.AddResult, int, error) {
	b := &q.adds
	b.mu.Lock()
	if !b.busy {
		// Nothing in flight (so nothing queued): send at once on the
		// caller's own ctx, then hand the lead to whoever queued meanwhile.
		// The same as leading a batch of one, without its bookkeeping.
		b.busy = true
		b.mu.Unlock()
		res, acked, err := q.st.AddWait(ctx, q.nowArg(), jobs, q.cfg.WaitReplicas, q.cfg.WaitTimeout.Milliseconds())
		b.mu.Lock()
		q.handOffLocked()
		b.mu.Unlock()
		return res, acked, err
	}
	req := &addReq{ctx: ctx, jobs: jobs, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	b.pending = append(b.pending, req)
	b.mu.Unlock()
	select {
	case <-req.done:
	case <-req.lead:
		q.lead(ctx)
	case <-ctx.Done():
		if q.abandon(req) {
			return nil, 0, ctx.Err()
		}
		// Already being sent: its outcome is on the way.
		<-req.done
	}
	<-req.done
	return req.res, req.acked, req.err
}

// abandon withdraws a request that is still queued, passing on the lead if
// it was handed one meanwhile. It reports whether the request was withdrawn.
func (q *Queue) abandon(req *addReq) bool {
	b := &q.adds
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range b.pending {
		if r == req {
			b.pending = append(b.pending[:i], b.pending[i+1:]...)
			select {
			case <-req.lead: // handed the lead just now: pass it on
				q.handOffLocked()
			default:
			}
			return true
		}
	}
	return false
}

// handOffLocked gives the lead to the oldest queued request, or ends the
// busy state. b.mu must be held.
func (q *Queue) handOffLocked() {
	b := &q.adds
	if len(b.pending) == 0 {
		b.busy = false
		return
	}
	b.pending[0].lead <- struct{}{}
}

// lead sends one coalesced call with the queued requests (the caller's own
// first), delivers the results and hands the lead on.
func (q *Queue) lead(ctx context.Context) {
	b := &q.adds
	b.mu.Lock()
	var batch []*addReq
	n := 0
	for len(b.pending) > 0 && (len(batch) == 0 || n+len(b.pending[0].jobs) <= maxCoalescedJobs) {
		batch = append(batch, b.pending[0])
		n += len(b.pending[0].jobs)
		b.pending = b.pending[1:]
	}
	b.mu.Unlock()

	// One call for all; an ID (or unique key) repeated across requests is
	// sent once and its result shared, so no job is written twice.
	send := make([]store.NewJob, 0, n)
	index := make(map[string]int, n)
	where := make([][]int, len(batch))
	for i, r := range batch {
		where[i] = make([]int, len(r.jobs))
		for k, j := range r.jobs {
			key := "i:" + j.ID
			if j.Unique != "" {
				if at, ok := index["u:"+j.Unique]; ok {
					where[i][k] = -1 - at
					continue
				}
			}
			if at, ok := index[key]; ok {
				where[i][k] = -1 - at
				continue
			}
			index[key] = len(send)
			if j.Unique != "" {
				index["u:"+j.Unique] = len(send)
			}
			where[i][k] = len(send)
			send = append(send, j)
		}
	}
	// The call is abandoned only when every caller in it has given up.
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var waiting atomic.Int32
	waiting.Store(int32(len(batch)))
	for _, r := range batch {
		stop := context.AfterFunc(r.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	res, acked, err := q.st.AddWait(callCtx, q.nowArg(), send, q.cfg.WaitReplicas, q.cfg.WaitTimeout.Milliseconds())
	for i, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.acked = acked
			r.res = make([]store.AddResult, len(r.jobs))
			for k, at := range where[i] {
				if at >= 0 {
					r.res[k] = res[at]
					continue
				}
				// Repeats a job an earlier request of this call added: a
				// duplicate of it.
				first := res[-1-at]
				dup := store.AddResult{Added: false, State: first.State, Body: first.Body, ID: first.ID}
				if first.Added {
					dup.Body, dup.ID = string(send[-1-at].Body), send[-1-at].ID
				}
				r.res[k] = dup
			}
		}
		close(r.done)
	}
	b.mu.Lock()
	q.handOffLocked()
	b.mu.Unlock()
}
