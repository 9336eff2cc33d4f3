package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The worker, the embedded Redis and every client must be gone when run
// returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRun runs the program against redisURL ("" = embedded miniredis) under
// a fresh key prefix and checks what it printed.
func testRun(t *testing.T, redisURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "qs" + hex.EncodeToString(b[:])
	defer cleanup(t, redisURL, prefix)

	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, redisURL, prefix))
	s := out.String()
	t.Log("\n" + s)
	for _, line := range []string{
		"added     welcome-email (waiting)",
		"completed welcome-email after 1 attempt(s)",
		"failed    sync-crm      attempt 1: CRM unavailable (will retry)",
		"completed sync-crm      after 2 attempt(s)",
		"failed    charge-card   attempt 1: card declined (will retry)",
		"dead      charge-card   attempt 2: card declined",
		"counts: waiting=0 active=0 delayed=0 failed=0 completed=2 dead=1",
		"dead job charge-card: attempts exhausted: 2 of 2 failed",
	} {
		require.Contains(t, s, line+"\n")
	}
	// The summary comes last: Shutdown waited for every hook.
	require.Regexp(t, `counts: .*\ndead job .*\n$`, s)
}

func TestQuickstartMiniredis(t *testing.T) {
	t.Parallel()
	testRun(t, "")
}

func TestQuickstartRealRedis(t *testing.T) {
	addr := os.Getenv("HOPPER_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("HOPPER_TEST_REDIS_ADDR not set: skipping the real-Redis run")
	}
	t.Parallel()
	testRun(t, "redis://"+addr)
}

// cleanup deletes a run's keys from a shared real server: only keys under
// the run's own random prefix.
func cleanup(t *testing.T, redisURL, prefix string) {
	if redisURL == "" {
		return
	}
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		require.NoError(t, c.Del(ctx, iter.Val()).Err())
	}
	require.NoError(t, iter.Err())
}
