package hopper

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/scripts"
	"github.com/hopperq/hopper/internal/store"
	"github.com/stretchr/testify/require"
)

// Every script takes all its keys from KEYS (through lib.lua's K table) and
// builds none: the first argument of every redis.call names a K field or a
// local bound to one. This is what keeps every script Cluster-safe.
func TestScriptsTakeKeysOnlyFromKEYS(t *testing.T) {
	t.Parallel()
	call := regexp.MustCompile(`redis\.call\('([A-Z]+)'(?:,\s*([^,)]+))?`)
	keyless := map[string]bool{"TIME": true}
	for _, s := range scripts.All {
		own := s.Own()
		require.True(t, strings.HasPrefix(own, "-- "+s.Name+".lua:"), "%s has a header", s.Name)
		for _, h := range []string{"KEYS:", "ARGV", "Returns"} {
			require.Contains(t, own, h, "%s header names %s", s.Name, h)
		}
		require.NotContains(t, own, "KEYS[", "%s indexes KEYS directly; use lib.lua's K", s.Name)
		require.NotContains(t, own, "#!lua", s.Name)
		require.NotContains(t, own, "setresp", s.Name)
		for _, src := range []string{own, s.Src} {
			for _, m := range call.FindAllStringSubmatch(src, -1) {
				if keyless[m[1]] {
					continue
				}
				arg := strings.TrimSpace(m[2])
				ok := strings.HasPrefix(arg, "K.") || arg == "set" || arg == "c" || arg == "sets[state]"
				require.True(t, ok, "%s: %s takes key %q, not from K", s.Name, m[1], arg)
			}
		}
	}
	// lib.lua's K table maps exactly the parts of internal/keys, in order.
	lib := scripts.Add.Src
	for p := range keys.NumParts {
		require.Contains(t, lib, keys.PartName(p)+" = KEYS[")
		require.Regexp(t, `\b`+keys.PartName(p)+` = KEYS\[`+strconv.Itoa(p+1)+`\]`, lib)
	}
}

// go-redis retries a command after a timeout, so any script may run twice.
// A re-run must not add a job twice nor report a completed ack as lost.
func TestScriptsAreSafeToRerun(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("rerun", nil)
		job := store.NewJob{ID: "auto123", Body: []byte(`{"name":"n","ts":1}` + "\n")}
		for i := range 2 {
			r, err := q.st.Add(ctx, 0, []store.NewJob{job})
			require.NoError(t, err)
			require.Equal(t, i == 0, r[0].Added)
		}
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, c.Waiting)

		f, err := q.st.Fetch(ctx, 0, 1, 60000)
		require.NoError(t, err)
		ack := []store.Ack{{ID: "auto123", Token: f.Jobs[0].Token, KeepCount: 10}}
		s, err := q.st.Complete(ctx, 0, ack)
		require.NoError(t, err)
		require.Equal(t, []int{store.LeaseOK}, s)
		s, err = q.st.Complete(ctx, 0, ack)
		require.NoError(t, err)
		require.Equal(t, []int{store.LeaseAgain}, s, "a re-run is recognised, not reported as lost")
		j, err := q.Job(ctx, "auto123")
		require.NoError(t, err)
		require.Equal(t, 1, j.AttemptsMade, "and changes nothing")
	})
}

func TestStaleTokensAreRefused(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("stale", nil)
		_, err := q.Add(ctx, "n", nil, &JobOptions{ID: "j"})
		require.NoError(t, err)
		now := int64(1_800_000_000_000)
		first, err := q.st.Fetch(ctx, now, 1, 1000)
		require.NoError(t, err)
		old := first.Jobs[0].Token
		requeued, _, err := q.st.Recover(ctx, now+1001, 5, 100, 10, 0)
		require.NoError(t, err)
		require.Equal(t, []string{"j"}, requeued)
		second, err := q.st.Fetch(ctx, now+1002, 1, 1000)
		require.NoError(t, err)
		cur := second.Jobs[0].Token
		require.NotEqual(t, old, cur, "each delivery gets a new fencing token")

		stale := store.Lease{ID: "j", Token: old}
		st, err := q.st.Extend(ctx, now+1003, 1000, []store.Lease{stale, {ID: "j", Token: cur}})
		require.NoError(t, err)
		require.Equal(t, []int{0, 1}, st)
		p, err := q.st.Progress(ctx, "j", old, []byte("5"))
		require.NoError(t, err)
		require.Equal(t, 0, p)
		r, err := q.st.Retry(ctx, now+1004, "j", old, 0, "", true)
		require.NoError(t, err)
		require.Equal(t, 0, r)
		d, err := q.st.Dead(ctx, now+1004, "j", old, "", 10, 0, true)
		require.NoError(t, err)
		require.Equal(t, 0, d)
		rel, err := q.st.Release(ctx, []store.Lease{stale})
		require.NoError(t, err)
		require.Equal(t, []int{0}, rel)
		c, err := q.st.Complete(ctx, now+1005, []store.Ack{{ID: "j", Token: old, KeepCount: 10}})
		require.NoError(t, err)
		require.Equal(t, []int{0}, c)
		j, err := q.Job(ctx, "j")
		require.NoError(t, err)
		require.Equal(t, StateActive, j.State, "stale calls changed nothing")
		require.Nil(t, j.Progress)
		require.Equal(t, 0, j.AttemptsMade)

		// The current holder's ack in a batch with a stale one: refused for the
		// stale one alone.
		c, err = q.st.Complete(ctx, now+1006, []store.Ack{{ID: "j", Token: old, KeepCount: 10}, {ID: "j", Token: cur, KeepCount: 10}})
		require.NoError(t, err)
		require.Equal(t, []int{0, 1}, c)
	})
}
