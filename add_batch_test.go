package hopper

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Concurrent adds are coalesced into fewer script calls, and every add gets
// its own correct answer: repeated IDs across goroutines make one job, and
// callers that give up early leave nothing stuck.
func TestConcurrentAddsCoalesce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("coalesce", nil)
		const goroutines, each = 16, 50
		before := h.cmds.Load()
		var wg sync.WaitGroup
		var mu sync.Mutex
		added := map[string]int{}
		dups := 0
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					opts := &JobOptions{}
					if i%10 == 0 {
						opts.ID = fmt.Sprint("shared-", i) // every goroutine adds this ID
					}
					if i%10 == 5 && rand.IntN(2) == 0 {
						// A caller that gives up at once: no error other than its ctx's.
						cctx, cancel := context.WithCancel(ctx)
						cancel()
						_, err := q.Add(cctx, "n", []byte(fmt.Sprint(g, i)), opts)
						require.ErrorIs(t, err, context.Canceled)
						continue
					}
					j, err := q.Add(ctx, "n", []byte(fmt.Sprint(g, i)), opts)
					require.NoError(t, err)
					mu.Lock()
					if j.Duplicate {
						dups++
						require.Contains(t, j.ID, "shared-")
					} else {
						added[j.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for id, n := range added {
			require.Equal(t, 1, n, "job %s reported added %d times", id, n)
		}
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, len(added), c.Waiting, "every job exists exactly once")
		for i := 0; i < each; i += 10 {
			require.Equal(t, 1, added[fmt.Sprint("shared-", i)])
		}
		require.Equal(t, goroutines*(each/10)-each/10, dups)
		calls := h.cmds.Load() - before
		t.Logf("%s: %d adds in %d commands", h.name, len(added)+dups, calls)
		require.Less(t, calls, int64(len(added)+dups), "concurrent adds share script calls")
	})
}

// A queued add whose caller gives up is withdrawn without a trace; the
// others still complete.
func TestAddCallerGivesUpWhileQueued(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("giveup", nil)
		for round := range 20 {
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cctx, cancel := context.WithTimeout(ctx, time.Duration(rand.IntN(300))*time.Microsecond)
					defer cancel()
					j, err := q.Add(cctx, "n", nil, &JobOptions{ID: fmt.Sprint("r", round, "-", i)})
					if err == nil {
						require.False(t, j.Duplicate)
					}
				}()
			}
			wg.Wait()
		}
		// The batcher is idle again and a plain add goes through.
		j, err := q.Add(ctx, "n", nil, &JobOptions{ID: "after"})
		require.NoError(t, err)
		require.False(t, j.Duplicate)
		q.adds.mu.Lock()
		defer q.adds.mu.Unlock()
		require.False(t, q.adds.busy)
		require.Empty(t, q.adds.pending)
	})
}
