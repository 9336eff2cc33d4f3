package hopper

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/hopperq/hopper/internal/scripts"
	"github.com/hopperq/hopper/internal/store"
	"github.com/stretchr/testify/require"
)

// Every script takes all its keys from KEYS (through lib.lua's K table) and
// builds none: the key argument of every redis.call, and of every lib helper
// that takes a key, names a K field or a local bound to one. This is what
// keeps every script Cluster-safe (the cluster suite checks it for real).
func TestScriptsTakeKeysOnlyFromKEYS(t *testing.T) {
	t.Parallel()
	keyArg := regexp.MustCompile(`(?:redis\.call|call_chunked)\('([A-Z]+)'(?:,\s*([^,)]+))?|\b(?:hmget|trim|schedule)\(([^,)]+)`)
	check := func(name, src string, allowed map[string]bool) {
		for _, m := range keyArg.FindAllStringSubmatch(src, -1) {
			if m[1] == "TIME" {
				continue
			}
			arg := strings.TrimSpace(m[2] + m[3])
			ok := strings.HasPrefix(arg, "K.") || allowed[arg]
			require.True(t, ok, "%s: %q takes key %q, not from K", name, m[0], arg)
		}
		// Locals standing for keys are only ever bound to K fields.
		for _, m := range regexp.MustCompile(`\b(?:local )?(set|c) = ([^\n]+)`).FindAllStringSubmatch(src, -1) {
			require.True(t, strings.HasPrefix(strings.TrimSpace(m[2]), "K."), "%s: %s bound to %q", name, m[1], m[2])
		}
	}
	for _, s := range scripts.All {
		own := s.Own()
		require.True(t, strings.HasPrefix(own, "-- "+s.Name+".lua:"), "%s has a header", s.Name)
		for _, h := range []string{"KEYS:", "ARGV", "Returns"} {
			require.Contains(t, own, h, "%s header names %s", s.Name, h)
		}
		for _, banned := range []string{"KEYS[", "#!lua", "setresp", "cmsgpack", "bit.", "struct."} {
			require.NotContains(t, own, banned, s.Name)
		}
		check(s.Name, own, map[string]bool{"set": true, "sets[state]": true})
	}
	check("lib", scripts.Lib(), map[string]bool{"set": true, "c": true, "key": true})
	// Each script's K table maps exactly the parts it takes, as KEYS[1..n]
	// in internal/keys order, and it uses no K field outside them.
	for _, s := range scripts.All {
		first := strings.SplitN(s.Src, "\n", 2)[0]
		require.True(t, sort.IntsAreSorted(s.Parts), s.Name)
		require.NotEmpty(t, s.Parts, s.Name)
		var want strings.Builder
		want.WriteString("local K = {")
		for i, p := range s.Parts {
			want.WriteString(" " + keys.PartName(p) + " = KEYS[" + strconv.Itoa(i+1) + "],")
		}
		want.WriteString(" }")
		require.Equal(t, want.String(), first, s.Name)
		require.NotContains(t, s.Src[len(first):], "KEYS[", s.Name)
		require.Len(t, s.Keys(keys.New("p", "q")), len(s.Parts))
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
		for range 2 {
			r, err := q.st.Add(ctx, 0, []store.NewJob{job})
			require.NoError(t, err)
			require.True(t, r[0].Added, "a re-run of the same add reports the add, not a duplicate")
		}
		// Another add of the same ID (another body) is a duplicate.
		r, err := q.st.Add(ctx, 0, []store.NewJob{{ID: "auto123", Body: []byte(`{"name":"n","ts":2}` + "\n")}})
		require.NoError(t, err)
		require.False(t, r[0].Added)
		c, err := q.Counts(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, c.Waiting)

		f, err := q.st.Fetch(ctx, 0, 1, 60000)
		require.NoError(t, err)
		ack := []store.Ack{{ID: "auto123", Token: f.Jobs[0].Token, KeepCount: 10}}
		s, _, err := q.st.Complete(ctx, 0, ack, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{store.LeaseOK}, s)
		s, _, err = q.st.Complete(ctx, 0, ack, 0, 0)
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
		c, _, err := q.st.Complete(ctx, now+1005, []store.Ack{{ID: "j", Token: old, KeepCount: 10}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{0}, c)
		j, err := q.Job(ctx, "j")
		require.NoError(t, err)
		require.Equal(t, StateActive, j.State, "stale calls changed nothing")
		require.Nil(t, j.Progress)
		require.Equal(t, 0, j.AttemptsMade)

		// The current holder's ack in a batch with a stale one: refused for the
		// stale one alone.
		c, _, err = q.st.Complete(ctx, now+1006, []store.Ack{{ID: "j", Token: old, KeepCount: 10}, {ID: "j", Token: cur, KeepCount: 10}}, 0, 0)
		require.NoError(t, err)
		require.Equal(t, []int{0, 1}, c)
	})
}
