package webhook

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, typ string
		want         bool
	}{
		{"*", "task:created", true},
		{"*", "a", true},
		{"task:created", "task:created", true},
		{"task:created", "task:updated", false},
		{"task:created", "task:created:x", false},
		{"task:*", "task:created", true},
		{"task:*", "task:comment:added", true},
		{"task:*", "task", false},
		{"task:*", "tasks:created", false},
		{"task:*", "task.created", false},
		{"task:comment:*", "task:comment:added", true},
		{"task:comment:*", "task:created", false},
		{"invoice.*", "invoice.paid", true},
		{"invoice.*", "invoice:paid", false},
		{"billing.invoice.*", "billing.invoice.paid", true},
		{"task*", "tasks", false},            // a wildcard must be a whole segment
		{"*:created", "task:created", false}, // only a trailing wildcard
		{"task:*:x", "task:a:x", false},
		{"", "task", false},
		{"Task:created", "task:created", false}, // case-sensitive
	} {
		require.Equal(t, tc.want, Match(tc.pattern, tc.typ), "Match(%q, %q)", tc.pattern, tc.typ)
	}
}

// A store indexed by pattern finds exactly the endpoints Match accepts when
// it looks up candidatePatterns: for every valid pattern and type, Match
// holds iff the pattern is a candidate of the type.
func TestCandidatePatternsAgreeWithMatch(t *testing.T) {
	t.Parallel()
	types := []string{"task", "task:created", "task:comment:added", "invoice.paid", "a.b:c", "tasks:created"}
	patterns := []string{"*", "task", "task:*", "task:created", "task:comment:*", "invoice.*", "a.*", "a.b:*", "tasks:*"}
	for _, p := range patterns {
		require.Empty(t, checkPattern(p), p)
		for _, typ := range types {
			require.Empty(t, checkType(typ), typ)
			require.Equal(t, Match(p, typ), slices.Contains(candidatePatterns(typ), p), "pattern %q type %q", p, typ)
		}
	}
}

func TestCheckTypeAndPattern(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"task", "task:created", "invoice.paid", "a-b_c:d.e", "T1"} {
		require.Empty(t, checkType(ok), ok)
		require.Empty(t, checkPattern(ok), ok)
	}
	for _, bad := range []string{"", ":task", "task:", "task::x", "task.", "task created", "täsk", "task:*", "*"} {
		require.NotEmpty(t, checkType(bad), bad)
	}
	for _, ok := range []string{"*", "task:*", "a.b.*"} {
		require.Empty(t, checkPattern(ok), ok)
	}
	for _, bad := range []string{"", "task*", "*:x", "task:*:x", ":*", "**", "task:**"} {
		require.NotEmpty(t, checkPattern(bad), bad)
	}
}
