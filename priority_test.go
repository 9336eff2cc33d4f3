package hopper

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPriorityOrder(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("prio", nil)
		for _, j := range []struct {
			id  string
			pri int
		}{{"p5a", 5}, {"none1", 0}, {"p1", 1}, {"p5b", 5}, {"none2", 0}, {"p2", 2}} {
			_, err := q.Add(ctx, "n", nil, &JobOptions{ID: j.id, Priority: j.pri})
			require.NoError(t, err)
		}
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 6, c.Waiting)
		var order []string
		for range 6 {
			r, err := q.st.Fetch(ctx, 0, 1, 60000)
			require.NoError(t, err)
			require.Len(t, r.Jobs, 1)
			order = append(order, r.Jobs[0].ID)
		}
		require.Equal(t, []string{"none1", "none2", "p1", "p2", "p5a", "p5b"}, order)
	})
}

// A prioritized job keeps its priority through a retry and a release.
func TestPriorityKeptOnRequeue(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("prio2", nil)
		_, err := q.Add(ctx, "n", nil, &JobOptions{ID: "p3", Priority: 3})
		require.NoError(t, err)
		r, err := q.st.Fetch(ctx, 0, 1, 60000)
		require.NoError(t, err)
		_, err = q.Add(ctx, "n", nil, &JobOptions{ID: "p9", Priority: 9})
		require.NoError(t, err)
		s, err := q.st.Retry(ctx, 0, "p3", r.Jobs[0].Token, 0, "", true)
		require.NoError(t, err)
		require.Equal(t, 1, s)
		r, err = q.st.Fetch(ctx, 0, 2, 60000)
		require.NoError(t, err)
		require.Equal(t, "p3", r.Jobs[0].ID)
		require.Equal(t, "p9", r.Jobs[1].ID)
		j, err := q.Job(ctx, "p3")
		require.NoError(t, err)
		require.Equal(t, 3, j.Priority)
	})
}

func TestMultiQueueStrictPriority(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		hi, lo := h.queue("hi", nil), h.queue("lo", nil)
		for range 5 {
			_, err := lo.Add(ctx, "n", nil, nil)
			require.NoError(t, err)
			_, err = hi.Add(ctx, "n", nil, nil)
			require.NoError(t, err)
		}
		order := make(chan string, 10)
		cfg := *fastWorkerConfig()
		cfg.Concurrency, cfg.StrictPriority, cfg.Prefix = 1, true, h.prefix
		w, err := NewMultiWorker(h.client, map[string]int{"hi": 10, "lo": 1}, HandlerFunc(func(ctx context.Context, job *Job) error {
			order <- job.Queue
			return nil
		}), &cfg)
		require.NoError(t, err)
		h.start(w)
		var got []string
		for range 10 {
			select {
			case q := <-order:
				got = append(got, q)
			case <-time.After(5 * time.Second):
				t.Fatalf("only %d jobs ran: %v", len(got), got)
			}
		}
		require.Equal(t, []string{"hi", "hi", "hi", "hi", "hi", "lo", "lo", "lo", "lo", "lo"}, got)
	})
}

func TestMultiQueueWeighted(t *testing.T) {
	t.Parallel()
	w := &Worker{}
	for _, q := range []*workerQueue{{name: "a", weight: 6}, {name: "b", weight: 3}, {name: "c", weight: 1}} {
		w.queues = append(w.queues, q)
		w.weights += q.weight
	}
	first := map[string]int{}
	for range 10000 {
		order := w.queueOrder()
		require.Len(t, order, 3)
		first[order[0].name]++
	}
	// Expected 6000/3000/1000; allow generous statistical slack.
	require.InDelta(t, 6000, first["a"], 400)
	require.InDelta(t, 3000, first["b"], 400)
	require.InDelta(t, 1000, first["c"], 300)
}

// A worker serving two queues picks up from either with one blocking reader.
func TestMultiQueueWakeUp(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		a, b := h.queue("qa", nil), h.queue("qb", nil)
		got := make(chan string, 2)
		cfg := *fastWorkerConfig()
		cfg.PollInterval, cfg.Prefix = 10*time.Second, h.prefix
		w, err := NewMultiWorker(h.client, map[string]int{"qa": 1, "qb": 1}, HandlerFunc(func(ctx context.Context, job *Job) error {
			got <- job.Queue
			return nil
		}), &cfg)
		require.NoError(t, err)
		if h.name != "cluster" {
			require.Len(t, w.groups, 1, "one blocking reader for both queues")
		}
		h.start(w)
		for _, q := range []*Queue{b, a} {
			_, err := q.Add(ctx, "n", nil, nil)
			require.NoError(t, err)
			select {
			case name := <-got:
				require.Equal(t, q.Name(), name)
			case <-time.After(3 * time.Second):
				t.Fatal("job not picked up before the 10s poll")
			}
		}
	})
}
