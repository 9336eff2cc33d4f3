package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScheduledActions(t *testing.T) {
	redistest.EachURL(t, "ex", func(t *testing.T, redisURL, prefix string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		start := time.Now()
		require.NoError(t, run(ctx, &out, redisURL, prefix))
		s := out.String()
		require.Regexp(t, `recurring action billing:check-renewals: "daily", next run \d{4}-\d\d-\d\dT00:00:00Z`, s)
		require.Contains(t, s, "scheduled action webhook:send")
		require.Contains(t, s, "state delayed")
		require.Contains(t, s, "webhook:send for team team_42: invoice.paid -> https://hooks.example.com/t/42")
		require.Contains(t, s, "billing:check-renewals ran (schedule billing:check-renewals)")
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the action waited for its delay")
	})
}
