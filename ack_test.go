package hopper

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/scripts"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// lostReply makes the first call of one script land in Redis and then fail
// as if its reply were lost, after hold: a network cut after the request, or
// the worker's process frozen while it waited.
type lostReply struct {
	sc    *scripts.Script
	hold  time.Duration
	every bool // lose every reply, not only the first
	fired atomic.Bool
}

func (*lostReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		ours := len(args) > 1 && (args[1] == h.sc.Hash() || args[1] == h.sc.Src)
		if !ours || (!h.fired.CompareAndSwap(false, true) && !h.every) {
			return next(ctx, cmd)
		}
		if err := next(ctx, cmd); err != nil {
			h.fired.Store(false) // it did not land (NOSCRIPT): lose the next one
			return err
		}
		time.Sleep(h.hold)
		err := errors.New("read tcp: i/o timeout (a lost reply)")
		cmd.SetErr(err)
		return err
	}
}
func (*lostReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

type outcomes struct {
	mu  sync.Mutex
	all []Outcome
}

func (*outcomes) JobStarted(context.Context, *Job) {}
func (o *outcomes) JobFinished(_ context.Context, _ *Job, out Outcome) {
	o.mu.Lock()
	o.all = append(o.all, out)
	o.mu.Unlock()
}
func (o *outcomes) get() []Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Outcome(nil), o.all...)
}

// An acknowledgement that landed but whose reply was lost until past the
// lease: the worker's last, immediate attempt is answered "already done by
// this token", so the outcome is known to be recorded and the hooks fire
// once. (Found by the chaos soak: a SIGSTOPped worker's completion had
// landed before the stop, and it reported the job as unrecorded.)
func TestAckReplyLostPastLease(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		const lease = 600 * time.Millisecond
		h.client.AddHook(&lostReply{sc: scripts.Complete, hold: lease + 300*time.Millisecond})
		obs := &outcomes{}
		var completed atomic.Int32
		q := h.queue("ackreply", nil)
		h.worker("ackreply", HandlerFunc(func(context.Context, *Job) error { return nil }), &WorkerConfig{
			Concurrency: 1, LeaseDuration: lease, PollInterval: time.Second, Observer: obs,
			OnCompleted: func(context.Context, *Job) { completed.Add(1) },
		})
		_, err := q.Add(context.Background(), "x", nil, &JobOptions{ID: "a"})
		require.NoError(t, err)
		waitFor(t, 5*time.Second, "the attempt's outcome", func() bool { return len(obs.get()) == 1 })
		out := obs.get()[0]
		require.Equal(t, StateCompleted, out.State)
		require.True(t, out.Recorded, "the completion landed: the worker must know it")
		require.NoError(t, out.RecordErr)
		require.Equal(t, int32(1), completed.Load())
		j, err := q.Job(context.Background(), "a")
		require.NoError(t, err)
		require.Equal(t, StateCompleted, j.State)
		require.Equal(t, 1, j.AttemptsMade)
	})
}

// When no reply comes back at all, the outcome is unknown: Recorded is
// false and RecordErr says why, although the completion may have landed (it
// did here).
func TestAckOutcomeUnknown(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		const lease = 500 * time.Millisecond
		h.client.AddHook(&lostReply{sc: scripts.Complete, hold: lease + 100*time.Millisecond, every: true})
		obs := &outcomes{}
		q := h.queue("ackunknown", nil)
		h.worker("ackunknown", HandlerFunc(func(context.Context, *Job) error { return nil }), &WorkerConfig{
			Concurrency: 1, LeaseDuration: lease, PollInterval: time.Second, Observer: obs,
		})
		_, err := q.Add(context.Background(), "x", nil, &JobOptions{ID: "a"})
		require.NoError(t, err)
		waitFor(t, 5*time.Second, "the attempt's outcome", func() bool { return len(obs.get()) == 1 })
		out := obs.get()[0]
		require.False(t, out.Recorded)
		require.Error(t, out.RecordErr)
		j, err := q.Job(context.Background(), "a")
		require.NoError(t, err)
		require.Equal(t, StateCompleted, j.State, "the write landed although its reply never came")
	})
}
