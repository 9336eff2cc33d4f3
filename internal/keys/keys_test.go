package keys

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLayout(t *testing.T) {
	t.Parallel()
	q := New("hopper", "email")
	require.Len(t, q.All(), NumParts)
	require.Equal(t, "hopper:{email}:jobs", q.Key(Jobs))
	require.Equal(t, "hopper:{email}:prog", q.Key(Prog))
	require.Equal(t, "hopper:{email}:wake:w1", q.Wake("w1"))
	for _, k := range q.All() {
		require.True(t, strings.HasPrefix(k, "hopper:{email}:"), "every key shares the hash tag: %s", k)
	}
	seen := map[string]bool{}
	for p := range NumParts {
		require.NotEmpty(t, PartName(p))
		require.False(t, seen[PartName(p)], "duplicate part %s", PartName(p))
		seen[PartName(p)] = true
	}
}

func TestNameChecks(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"email", "a-b_c.d", "Q1", strings.Repeat("x", MaxQueueNameLen)} {
		require.Empty(t, CheckQueueName(ok), ok)
	}
	for _, bad := range []string{"", "a:b", "{a}", "a}", "a b", "a\n", "a\x00", "a*", "a?", "a[", "é", strings.Repeat("x", MaxQueueNameLen+1)} {
		require.NotEmpty(t, CheckQueueName(bad), "%q", bad)
	}
	require.Empty(t, CheckPrefix("app:hopper"))
	require.NotEmpty(t, CheckPrefix("app{x}"))
	for _, ok := range []string{"verify-42", "user@example.com", "a/b+c=d:e.f_g", "123"} {
		require.Empty(t, CheckJobID(ok), ok)
	}
	for _, bad := range []string{"", "a b", "a{b", "a\tb", "ü", strings.Repeat("x", MaxJobIDLen+1)} {
		require.NotEmpty(t, CheckJobID(bad), "%q", bad)
	}
	require.Empty(t, CheckJobName("email:send"))
	for _, bad := range []string{"", "a b", "a\x7f", strings.Repeat("x", MaxJobNameLen+1)} {
		require.NotEmpty(t, CheckJobName(bad), "%q", bad)
	}
}
