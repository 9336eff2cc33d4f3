package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
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
	var out bytes.Buffer
	prefix := "ex" + hex.EncodeToString(b[:])
	defer cleanup(t, redisURL, prefix)
	require.NoError(t, run(ctx, &out, redisURL, prefix))
	s := out.String()
	require.Contains(t, s, `schedule daily-cleanup      "0 0 * * *"`)
	require.Contains(t, s, `schedule weekly-newsletter  "0 9 * * 1"`)
	require.Regexp(t, `weekly-newsletter .* next run \d{4}-\d\d-\d\dT1[34]:00:00Z`, s, "09:00 New York is 13:00 or 14:00 UTC")
	require.Contains(t, s, "ran cleanup 1 time(s), newsletter 1 time(s)")
	m := regexp.MustCompile(`heartbeat: (\d+) ticks fired, (\d+) jobs ran`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	ticks, _ := strconv.Atoi(m[1])
	jobs, _ := strconv.Atoi(m[2])
	require.GreaterOrEqual(t, jobs, 3)
	require.LessOrEqual(t, jobs, ticks, "never more jobs than ticks, though two workers run the scheduler")
}

func TestCronMiniredis(t *testing.T) { testRun(t, "") }

func TestCronRealRedis(t *testing.T) {
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
