package hopper

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/store"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// nameHook records the names of the commands sent through a client.
type nameHook struct {
	mu    sync.Mutex
	names []string
}

func (*nameHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *nameHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}
func (h *nameHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.add(c)
		}
		return next(ctx, cmds)
	}
}
func (h *nameHook) add(c redis.Cmder) {
	h.mu.Lock()
	h.names = append(h.names, strings.ToLower(c.Name()))
	h.mu.Unlock()
}
func (h *nameHook) count(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.names {
		if s == name {
			n++
		}
	}
	return n
}

// With WaitReplicas and no replica to acknowledge (none of the test
// backends has one), adds land on the primary and report ErrNotReplicated
// beside the jobs; the positive case, with a real replica and a failover,
// is chaos test 10 (TestFailoverWaitReplicas).
func TestWaitReplicasNotReplicated(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		names := &nameHook{}
		h.client.AddHook(names)

		plain := h.queue("wr", nil)
		_, err := plain.Add(ctx, "x", []byte("{}"), nil)
		require.NoError(t, err)
		require.Zero(t, names.count("wait"), "WaitReplicas 0 must not send WAIT")
		evalsBefore := names.count("eval") // a fresh miniredis has no scripts cached

		q := h.queue("wr", &QueueConfig{WaitReplicas: 1, WaitTimeout: 60 * time.Millisecond})
		// A script cache emptied (Redis restarted) is handled inside the
		// pipeline with WAIT too.
		require.NoError(t, h.client.ScriptFlush(ctx).Err())
		start := time.Now()
		j, err := q.Add(ctx, "x", []byte(`{"a":1}`), &JobOptions{ID: "durable-1"})
		took := time.Since(start)
		require.ErrorIs(t, err, ErrNotReplicated)
		require.Contains(t, err.Error(), "0 of 1 within 60ms")
		require.NotNil(t, j, "the job is returned beside the error")
		require.Equal(t, "durable-1", j.ID)
		require.False(t, j.Duplicate)
		if _, single := h.client.(*redis.Client); single {
			// (On a cluster the add goes through the node's own client,
			// which the cluster client's hooks do not see.) EVALSHA + WAIT
			// met NOSCRIPT, then EVAL + WAIT.
			require.Equal(t, 2, names.count("wait"))
			require.Equal(t, evalsBefore+1, names.count("eval"))
		}
		if h.mr == nil {
			// A real server blocks for the whole timeout waiting for a replica.
			require.GreaterOrEqual(t, took, 60*time.Millisecond)
		}
		got, err := q.Job(ctx, "durable-1")
		require.NoError(t, err, "the job was written on the primary")
		require.Equal(t, StateWaiting, got.State)

		// Adding it again with the same ID is safe: one job.
		j, err = q.Add(ctx, "x", []byte(`{"a":1}`), &JobOptions{ID: "durable-1"})
		require.ErrorIs(t, err, ErrNotReplicated)
		require.True(t, j.Duplicate)

		jobs, err := q.AddBulk(ctx, []NewJob{{Name: "x"}, {Name: "y", Options: &JobOptions{Delay: time.Hour}}})
		require.ErrorIs(t, err, ErrNotReplicated)
		require.Len(t, jobs, 2)
		require.Equal(t, StateDelayed, jobs[1].State)
		counts, err := q.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(3), counts.Waiting)
		require.Equal(t, int64(1), counts.Delayed)
	})
}

func TestWaitReplicasConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ReadTimeout: 500 * time.Millisecond})
	defer c.Close()
	for _, tc := range []struct {
		cfg  QueueConfig
		want string
	}{
		{QueueConfig{WaitReplicas: -1}, "WaitReplicas"},
		{QueueConfig{WaitReplicas: 101}, "WaitReplicas"},
		{QueueConfig{WaitReplicas: 1, WaitTimeout: -time.Second}, "WaitTimeout"},
		{QueueConfig{WaitReplicas: 1, WaitTimeout: time.Microsecond}, "WaitTimeout"},
		{QueueConfig{WaitReplicas: 1}, "shorter than the client's ReadTimeout (500ms)"}, // default 1s
		{QueueConfig{WaitReplicas: 1, WaitTimeout: 500 * time.Millisecond}, "ReadTimeout"},
	} {
		_, err := NewQueue(c, "q", &tc.cfg)
		require.ErrorIs(t, err, ErrInvalid, "%+v", tc.cfg)
		require.Contains(t, err.Error(), tc.want)
	}
	q, err := NewQueue(c, "q", &QueueConfig{WaitReplicas: 2, WaitTimeout: 400 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, 400*time.Millisecond, q.cfg.WaitTimeout)

	d := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // go-redis' default 3s read timeout
	defer d.Close()
	q, err = NewQueue(d, "q", &QueueConfig{WaitReplicas: 1})
	require.NoError(t, err)
	require.Equal(t, time.Second, q.cfg.WaitTimeout)

	// A Ring spreads keys over independent servers: WAIT on "the" connection
	// of an add has no meaning there.
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	_, err = NewQueue(ring, "q", &QueueConfig{WaitReplicas: 1})
	require.ErrorIs(t, err, ErrInvalid)
	require.True(t, errors.Is(err, ErrInvalid) && strings.Contains(err.Error(), "*redis.Ring"), err.Error())
}

// A failover to a replica that missed the latest claims rolls the queue's
// token counter back, so the new primary hands out token numbers again. A
// worker still running a job claimed on the old primary must not hold the
// token of that job's new delivery: the claim's nonce keeps them apart.
func TestTokenUniqueAfterCounterRollback(t *testing.T) {
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("rollback", nil)
		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "x1"})
		require.NoError(t, err)
		k := q.st.Keys()
		before, err := h.client.HGet(ctx, k.Key(keys.Meta), "lease").Int64()
		if errors.Is(err, redis.Nil) {
			before, err = 0, nil
		}
		require.NoError(t, err)
		first, err := q.st.Fetch(ctx, 0, 1, 60000)
		require.NoError(t, err)
		require.Len(t, first.Jobs, 1)

		// What the promoted replica holds: the state before the claim.
		require.NoError(t, h.client.HSet(ctx, k.Key(keys.Meta), "lease", before).Err())
		require.NoError(t, h.client.HDel(ctx, k.Key(keys.Run), "x1").Err())
		require.NoError(t, h.client.ZRem(ctx, k.Key(keys.Active), "x1").Err())
		require.NoError(t, h.client.RPush(ctx, k.Key(keys.Wait), "x1").Err())

		second, err := q.st.Fetch(ctx, 0, 1, 60000)
		require.NoError(t, err)
		require.Len(t, second.Jobs, 1)
		old, cur := first.Jobs[0].Token, second.Jobs[0].Token
		num := func(tok string) string { n, _, _ := strings.Cut(tok, "-"); return n }
		require.Equal(t, num(old), num(cur), "the counter handed out the same number again")
		require.NotEqual(t, old, cur)

		st, _, err := q.st.Complete(ctx, 0, []store.Ack{{ID: "x1", Token: old, KeepCount: 10, KeepAgeMs: 60000}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{store.LeaseLost}, st, "the old primary's lease holder cannot complete the new delivery")
		st, _, err = q.st.Complete(ctx, 0, []store.Ack{{ID: "x1", Token: cur, KeepCount: 10, KeepAgeMs: 60000}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{store.LeaseOK}, st)
	})
}
