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

func TestDLQ(t *testing.T) {
	redistest.EachURL(t, "ex", func(t *testing.T, redisURL, prefix string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		require.NoError(t, run(ctx, &out, redisURL, prefix))
		s := out.String()
		require.Contains(t, s, "dead-letter queue: 3 jobs")
		require.Regexp(t, `invoice-2\s+attempts 3/3\s+error "no card on file"\s+reason "attempts exhausted: 3 of 3 failed"`, s)
		require.Regexp(t, `invoice-3\s+attempts 1/3\s+error "customer deleted"\s+reason "permanent failure: customer deleted"`, s)
		require.Contains(t, s, "retried invoice-2: completed after 1 attempt(s)")
		require.Contains(t, s, "purged 2 dead jobs; 0 left")
	})
}
