package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testRun(t *testing.T, redisURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "ex" + hex.EncodeToString(b[:])
	defer cleanup(t, redisURL, prefix)
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

func TestWebhooksMiniredis(t *testing.T) { testRun(t, "") }

func TestWebhooksRealRedis(t *testing.T) {
	addr := os.Getenv("HOPPER_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("HOPPER_TEST_REDIS_ADDR not set")
	}
	testRun(t, "redis://"+addr)
}

// cleanup deletes a test run's keys (its own random prefix) from a shared
// real server.
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
		c.Del(ctx, iter.Val())
	}
	require.NoError(t, iter.Err())
}

// regexpFind returns the first submatch of expr in s.
func regexpFind(t *testing.T, expr, s string) string {
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	require.Len(t, m, 2, s)
	return m[1]
}
