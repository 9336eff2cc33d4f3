package demo

import (
	"context"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
)

func TestRunMakesLiveTraffic(t *testing.T) {
	t.Parallel()
	redistest.Each(t, "demo", func(t *testing.T, b *redistest.Backend) {
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, Seed(context.Background(), b.Client, b.Prefix))
		done := make(chan error, 1)
		go func() { done <- Run(ctx, b.Client, b.Prefix, 200*time.Millisecond, nil) }()
		q := func(name string) *hopper.Queue {
			q, err := hopper.NewQueue(b.Client, name, &hopper.QueueConfig{Prefix: b.Prefix})
			require.NoError(t, err)
			return q
		}
		emails, exports := q("emails"), q("exports")
		deadline := time.Now().Add(20 * time.Second)
		for {
			e, err := emails.Counts(context.Background())
			require.NoError(t, err)
			x, err := exports.Counts(context.Background())
			require.NoError(t, err)
			if e.Completed > 3 && e.Dead >= 1 && x.Completed >= 1 && x.Delayed == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no varied traffic: emails %+v, exports %+v", e, x)
			}
			time.Sleep(50 * time.Millisecond)
		}
		done1, err := exports.Jobs(context.Background(), hopper.StateCompleted, 0, 1)
		require.NoError(t, err)
		j, err := exports.Job(context.Background(), done1[0].ID)
		require.NoError(t, err)
		require.Len(t, j.Logs, 5, "exports log their progress")
		require.JSONEq(t, "100", string(j.Progress))
		dead, err := emails.DeadLetters().List(context.Background(), 0, 10)
		require.NoError(t, err)
		require.Contains(t, dead[0].LastError, "550 mailbox unavailable")
		s, err := exports.GetSchedule(context.Background(), "cleanup")
		require.NoError(t, err)
		require.Equal(t, "@every 10s", s.Spec)
		names, err := hopper.ListQueues(context.Background(), b.Client, b.Prefix)
		require.NoError(t, err)
		require.ElementsMatch(t, Queues, names)
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return after its ctx ended")
		}
	})
}
