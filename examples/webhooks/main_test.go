package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testRun(t *testing.T, redisURL, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, redisURL, prefix))
	s := out.String()
	require.Contains(t, s, "endpoint crm   subscribes to [task:*]\n")
	require.Contains(t, s, "endpoint audit subscribes to [*]\n")
	require.Regexp(t, `sent task:created (task-1-created-\w{8}) to 2 endpoints\n`, s)
	id := regexpFind(t, `sent task:created (\S+) to`, s)
	require.Contains(t, s, `crm   got task:created, signature verified, delivery wh:`+id+`:crm, answered 204: {"task":1,"title":"Ship webhooks"}`)
	require.Contains(t, s, `audit got task:created, signature verified, delivery wh:`+id+`:audit, answered 204: {"task":1,"title":"Ship webhooks"}`)
	require.Contains(t, s, "sent it again: 2 of 2 deliveries already existed, nothing new enqueued\n")
}

func TestWebhooks(t *testing.T) { redistest.EachURL(t, "ex", testRun) }

// regexpFind returns the first submatch of expr in s.
func regexpFind(t *testing.T, expr, s string) string {
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	require.Len(t, m, 2, s)
	return m[1]
}
