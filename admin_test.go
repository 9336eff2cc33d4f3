package hopper

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJobsByState(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("list", nil)
		for i := range 5 {
			_, err := q.Add(ctx, "n", nil, &JobOptions{ID: fmt.Sprint("w", i)})
			require.NoError(t, err)
		}
		_, err := q.Add(ctx, "n", nil, &JobOptions{ID: "p1", Priority: 1})
		require.NoError(t, err)
		for i := range 3 {
			_, err := q.Add(ctx, "n", nil, &JobOptions{ID: fmt.Sprint("d", i), Delay: time.Duration(3-i) * time.Hour})
			require.NoError(t, err)
		}
		ids := func(jobs []*Job) []string {
			var out []string
			for _, j := range jobs {
				out = append(out, j.ID)
			}
			return out
		}
		page, err := q.Jobs(ctx, StateWaiting, 0, 2)
		require.NoError(t, err)
		require.Equal(t, []string{"w4", "w3"}, ids(page), "newest first")
		page, err = q.Jobs(ctx, StateWaiting, 4, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"w0", "p1"}, ids(page), "then prioritized jobs")
		page, err = q.Jobs(ctx, StateWaiting, 6, 10)
		require.NoError(t, err)
		require.Empty(t, page)
		page, err = q.Jobs(ctx, StateDelayed, 0, 0) // clamped to 1
		require.NoError(t, err)
		require.Equal(t, []string{"d2"}, ids(page), "soonest due first")
		page, err = q.Jobs(ctx, StateDelayed, 0, 1<<20)
		require.NoError(t, err)
		require.Equal(t, []string{"d2", "d1", "d0"}, ids(page))
		_, err = q.Jobs(ctx, State("bogus"), 0, 10)
		require.ErrorIs(t, err, ErrInvalid)
		page, err = q.Jobs(ctx, StateCompleted, 0, 10)
		require.NoError(t, err)
		require.Empty(t, page)
	})
}

func TestListQueues(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		names, err := ListQueues(ctx, h.client, h.prefix)
		require.NoError(t, err)
		require.Empty(t, names)
		for _, name := range []string{"emails", "exports"} {
			_, err := h.queue(name, nil).Add(ctx, "n", nil, nil)
			require.NoError(t, err)
		}
		h.worker("reports", newRecorder(nil), nil)
		waitFor(t, 5*time.Second, "the worker registers its queue", func() bool {
			names, err = ListQueues(ctx, h.client, h.prefix)
			require.NoError(t, err)
			return len(names) == 3
		})
		sort.Strings(names)
		require.Equal(t, []string{"emails", "exports", "reports"}, names)
		_, err = ListQueues(ctx, h.client, "bad prefix")
		require.ErrorIs(t, err, ErrInvalid)
	})
}
