package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEmail(t *testing.T) {
	redistest.EachURL(t, "ex", func(t *testing.T, redisURL, prefix string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		// The program's delays divided by 100: same pattern, a fast test.
		require.NoError(t, run(ctx, &out, redisURL, prefix, timing{verifyBase: 20 * time.Millisecond, bulkDelay: 50 * time.Millisecond}))
		s := out.String()
		require.Contains(t, s, "enqueued verify-email and 3 announcements")
		require.Contains(t, s, "retry: verify-email to ada@example.com, attempt 1/3 failed (smtp: connection reset by peer)")
		require.Contains(t, s, "retry: verify-email to ada@example.com, attempt 2/3 failed")
		require.Contains(t, s, "sent: verify-email to ada@example.com after 3 attempt(s)")
		require.Contains(t, s, "retry: announcement to bob@example.com, attempt 1/2 failed")
		require.Contains(t, s, "sent: announcement to bob@example.com after 2 attempt(s)")
		require.Contains(t, s, "sent: announcement to cy@example.com after 1 attempt(s)")
		require.Contains(t, s, "ALERT: announcement to mallory@invalid.example is dead: 550 no such user mallory@invalid.example")
		require.Contains(t, s, "delivered to 3 of 4 recipients")
		require.Equal(t, 1, strings.Count(s, "ALERT"), "one alert, for the one dead send")
	})
}
