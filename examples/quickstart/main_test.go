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

// The worker, the embedded Redis and every client must be gone when run
// returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testRun runs the program against redisURL ("" = embedded miniredis) under
// a fresh key prefix and checks what it printed.
func testRun(t *testing.T, redisURL, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

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

func TestQuickstart(t *testing.T) { redistest.EachURL(t, "qs", testRun) }
