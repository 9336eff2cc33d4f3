package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCleanup(t *testing.T) {
	redistest.EachURL(t, "ex", func(t *testing.T, redisURL, prefix string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		now := time.Now()
		dir := t.TempDir()
		require.NoError(t, seedUploads(dir, now))
		st := newMemStore(now)
		var out bytes.Buffer
		require.NoError(t, run(ctx, &out, redisURL, prefix, st, dir))
		s := out.String()
		require.Regexp(t, `schedule daily-cleanup\s+"0 0 \* \* \*"\s+next run \d{4}-\d\d-\d\dT00:00:00Z`, s)
		require.Regexp(t, `schedule hourly-crm-sync\s+"0 \* \* \* \*"\s+next run \d{4}-\d\d-\d\dT\d\d:00:00Z`, s)
		require.Contains(t, s, `daily-cleanup (triggered now): completed {"sessions":250,"audit_logs":230,"files":3}`)
		require.Contains(t, s, `hourly-crm-sync (triggered now): completed {"contacts_updated":12}`)

		// What is left: the live sessions, the recent audit entries and files.
		require.Len(t, st.sessions, 5)
		require.Len(t, st.audit, 10)
		left, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, left, 2)
		for _, e := range left {
			info, err := e.Info()
			require.NoError(t, err)
			require.True(t, info.ModTime().After(now.Add(-fileRetention)))
		}
	})
}

func TestCleanupStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	require.NoError(t, seedUploads(dir, time.Now()))
	_, err := deleteOldFiles(ctx, dir, time.Now())
	require.ErrorIs(t, err, context.Canceled)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, left, 5, "nothing deleted after the job's ctx ended")
}
