package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
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

func TestCron(t *testing.T) { redistest.EachURL(t, "ex", testRun) }
