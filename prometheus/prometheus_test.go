package hopperprom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.DiscardHandler)

// backend is one Redis the tests run against, with a key prefix of its own.
type backend struct {
	name   string
	client redis.UniversalClient
	prefix string
}

// eachBackend runs fn on miniredis, and on the servers named by
// HOPPER_TEST_REDIS_ADDR and HOPPER_TEST_REDIS_CLUSTER when set, each with a
// fresh random key prefix whose keys are deleted afterwards.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		fn(t, backend{"miniredis", c, randomPrefix()})
	})
	if addr := os.Getenv("HOPPER_TEST_REDIS_ADDR"); addr != "" {
		t.Run("redis", func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: addr})
			b := backend{"redis", c, randomPrefix()}
			t.Cleanup(func() { deleteKeys(b); _ = c.Close() })
			fn(t, b)
		})
	}
	if addrs := os.Getenv("HOPPER_TEST_REDIS_CLUSTER"); addrs != "" {
		t.Run("cluster", func(t *testing.T) {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
			b := backend{"cluster", c, randomPrefix()}
			t.Cleanup(func() { deleteKeys(b); _ = c.Close() })
			fn(t, b)
		})
	}
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "prom" + hex.EncodeToString(b[:])
}

// deleteKeys removes the test's keys: its prefix is random, never user input.
func deleteKeys(b backend) {
	ctx := context.Background()
	del := func(c *redis.Client) {
		it := c.Scan(ctx, 0, b.prefix+":*", 1000).Iterator()
		for it.Next(ctx) {
			c.Del(ctx, it.Val())
		}
	}
	switch c := b.client.(type) {
	case *redis.Client:
		del(c)
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { del(n); return nil })
	}
}

// runWorkload runs 10 jobs that succeed, 3 that fail once then succeed and
// 2 that die on queue "mail", observed by obs, and returns once all 15 are
// terminal, with the worker stopped.
func runWorkload(t *testing.T, b backend, obs *Observer) {
	t.Helper()
	ctx := context.Background()
	q, err := hopper.NewQueue(b.client, "mail", &hopper.QueueConfig{Prefix: b.prefix, Logger: quiet})
	require.NoError(t, err)
	var jobs []hopper.NewJob
	for range 10 {
		jobs = append(jobs, hopper.NewJob{Name: "ok"})
	}
	for range 3 {
		jobs = append(jobs, hopper.NewJob{Name: "flaky", Options: &hopper.JobOptions{Backoff: hopper.Fixed(time.Millisecond)}})
	}
	for range 2 {
		jobs = append(jobs, hopper.NewJob{Name: "bad"})
	}
	added, err := q.AddBulk(ctx, jobs)
	require.NoError(t, err)
	w, err := hopper.NewWorker(b.client, "mail", hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		switch {
		case j.Name == "bad":
			return hopper.Permanent(errors.New("bad address"))
		case j.Name == "flaky" && j.AttemptsMade == 0:
			return errors.New("smtp timeout")
		}
		return nil
	}), &hopper.WorkerConfig{Prefix: b.prefix, Logger: quiet, Observer: obs, Concurrency: 4,
		PollInterval: time.Second, LeaseDuration: 5 * time.Second})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, j := range added {
		_, err := q.Wait(wctx, j.ID)
		if j.Name == "bad" {
			require.ErrorIs(t, err, hopper.ErrJobDead)
		} else {
			require.NoError(t, err)
		}
	}
	require.NoError(t, w.Close())
	require.NoError(t, <-done)
}

func TestObserverCountsAKnownWorkload(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		obs := NewObserver(nil)
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(obs))
		runWorkload(t, b, obs)

		// 18 attempts: 10 + 3×2 + 2.
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hopper_jobs_completed_total Attempts that completed their job.
# TYPE hopper_jobs_completed_total counter
hopper_jobs_completed_total{queue="mail"} 13
# HELP hopper_jobs_dead_total Attempts that dead-lettered their job.
# TYPE hopper_jobs_dead_total counter
hopper_jobs_dead_total{queue="mail"} 2
# HELP hopper_jobs_failed_total Attempts that failed (then retried or dead-lettered).
# TYPE hopper_jobs_failed_total counter
hopper_jobs_failed_total{queue="mail"} 5
# HELP hopper_jobs_processed_total Attempts finished by this process, whatever their outcome.
# TYPE hopper_jobs_processed_total counter
hopper_jobs_processed_total{queue="mail"} 18
# HELP hopper_jobs_retried_total Failed attempts whose job was scheduled for another attempt.
# TYPE hopper_jobs_retried_total counter
hopper_jobs_retried_total{queue="mail"} 3
# HELP hopper_jobs_started_total Attempts started by this process.
# TYPE hopper_jobs_started_total counter
hopper_jobs_started_total{queue="mail"} 18
# HELP hopper_jobs_active Attempts running in this process now.
# TYPE hopper_jobs_active gauge
hopper_jobs_active{queue="mail"} 0
`), "hopper_jobs_completed_total", "hopper_jobs_dead_total", "hopper_jobs_failed_total",
			"hopper_jobs_processed_total", "hopper_jobs_retried_total", "hopper_jobs_started_total", "hopper_jobs_active"))

		mfs, err := reg.Gather()
		require.NoError(t, err)
		counts := map[string]uint64{}
		for _, mf := range mfs {
			if mf.GetName() != "hopper_job_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" {
						counts[l.GetValue()] = m.GetHistogram().GetSampleCount()
					}
				}
			}
		}
		require.Equal(t, map[string]uint64{"completed": 13, "failed": 3, "dead": 2}, counts, "durations by outcome")
	})
}

func TestObserverJobNameLabel(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		obs := NewObserver(&ObserverOptions{JobNameLabel: true, Namespace: "app"})
		runWorkload(t, b, obs)
		require.InDelta(t, 10, testutil.ToFloat64(obs.completed.WithLabelValues("mail", "ok")), 0)
		require.InDelta(t, 3, testutil.ToFloat64(obs.completed.WithLabelValues("mail", "flaky")), 0)
		require.InDelta(t, 2, testutil.ToFloat64(obs.dead.WithLabelValues("mail", "bad")), 0)
		require.Equal(t, 1, testutil.CollectAndCount(obs, "app_jobs_dead_total"))
	})
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		runWorkload(t, b, NewObserver(nil))
		later, err := hopper.NewQueue(b.client, "later", &hopper.QueueConfig{Prefix: b.prefix, Logger: quiet})
		require.NoError(t, err)
		for range 4 {
			_, err := later.Add(ctx, "x", nil, nil)
			require.NoError(t, err)
		}
		_, err = later.Add(ctx, "x", nil, &hopper.JobOptions{Delay: time.Hour})
		require.NoError(t, err)
		require.NoError(t, later.Pause(ctx))

		qc, err := NewQueueCollector(b.client, &CollectorOptions{Prefix: b.prefix, Logger: quiet})
		require.NoError(t, err)
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(qc))
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hopper_queue_jobs Jobs in the queue per state (waiting includes jobs held by a pause).
# TYPE hopper_queue_jobs gauge
hopper_queue_jobs{queue="later",state="active"} 0
hopper_queue_jobs{queue="later",state="completed"} 0
hopper_queue_jobs{queue="later",state="dead"} 0
hopper_queue_jobs{queue="later",state="delayed"} 1
hopper_queue_jobs{queue="later",state="failed"} 0
hopper_queue_jobs{queue="later",state="waiting"} 4
hopper_queue_jobs{queue="mail",state="active"} 0
hopper_queue_jobs{queue="mail",state="completed"} 13
hopper_queue_jobs{queue="mail",state="dead"} 2
hopper_queue_jobs{queue="mail",state="delayed"} 0
hopper_queue_jobs{queue="mail",state="failed"} 0
hopper_queue_jobs{queue="mail",state="waiting"} 0
# HELP hopper_queue_paused 1 if the queue is paused.
# TYPE hopper_queue_paused gauge
hopper_queue_paused{queue="later"} 1
hopper_queue_paused{queue="mail"} 0
# HELP hopper_queue_workers Live worker processes registered for the queue.
# TYPE hopper_queue_workers gauge
hopper_queue_workers{queue="later"} 0
hopper_queue_workers{queue="mail"} 0
# HELP hopper_up 1 if the last scrape read every queue's state from Redis, else 0.
# TYPE hopper_up gauge
hopper_up 1
# HELP hopper_scrape_errors_total Failed reads of queue state from Redis during scrapes.
# TYPE hopper_scrape_errors_total counter
hopper_scrape_errors_total 0
`), "hopper_queue_jobs", "hopper_queue_paused", "hopper_queue_workers", "hopper_up", "hopper_scrape_errors_total"))

		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "hopper_queue_oldest_waiting_seconds" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == "later" {
						require.Greater(t, m.GetGauge().GetValue(), 0.0)
						require.Less(t, m.GetGauge().GetValue(), 60.0)
					}
				}
			}
		}

		// A fixed list reports only those queues; a bad name is refused.
		only, err := NewQueueCollector(b.client, &CollectorOptions{Prefix: b.prefix, Queues: []string{"later"}})
		require.NoError(t, err)
		require.Equal(t, 6+3+2, testutil.CollectAndCount(only), "6 states, paused, oldest, workers; up, errors")
		_, err = NewQueueCollector(b.client, &CollectorOptions{Queues: []string{"bad{name}"}})
		require.ErrorIs(t, err, hopper.ErrInvalid)
	})
}

func TestQueueCollectorRedisDown(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	mr.Close()
	qc, err := NewQueueCollector(c, &CollectorOptions{Timeout: time.Second, Logger: quiet})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, testutil.CollectAndCompare(qc, strings.NewReader(`
# HELP hopper_up 1 if the last scrape read every queue's state from Redis, else 0.
# TYPE hopper_up gauge
hopper_up 0
# HELP hopper_scrape_errors_total Failed reads of queue state from Redis during scrapes.
# TYPE hopper_scrape_errors_total counter
hopper_scrape_errors_total 1
`)))
	require.Less(t, time.Since(start), 3*time.Second, "a scrape never hangs on a dead Redis")
	_, err = NewQueueCollector(nil, nil)
	require.ErrorIs(t, err, hopper.ErrInvalid)
}
