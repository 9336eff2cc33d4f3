// Package redistest runs a test once per configured Redis backend, each run
// isolated by a random key prefix: miniredis always, a real server when
// HOPPER_TEST_REDIS_ADDR is set, and a Redis Cluster when
// HOPPER_TEST_REDIS_CLUSTER (comma-separated seed addresses) is set. It is
// for hopper's own tests.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is one test's view of one Redis backend.
type Backend struct {
	Name      string // "miniredis", "redis" or "cluster"
	Client    redis.UniversalClient
	Prefix    string               // a random key prefix owned by this test
	Miniredis *miniredis.Miniredis // nil on a real server
}

// Each runs fn as a parallel subtest per backend. The client is closed, and
// on a real server the test's keys deleted, when the subtest ends; it never
// flushes a database.
func Each(t *testing.T, prefix string, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		mr := miniredis.RunT(t)
		fn(t, newBackend(t, "miniredis", prefix, redis.NewClient(&redis.Options{Addr: mr.Addr()}), mr))
	})
	t.Run("redis", func(t *testing.T) {
		addr := os.Getenv("HOPPER_TEST_REDIS_ADDR")
		if addr == "" {
			t.Skip("HOPPER_TEST_REDIS_ADDR not set: skipping the real-Redis run")
		}
		t.Parallel()
		fn(t, newBackend(t, "redis", prefix, redis.NewClient(&redis.Options{Addr: addr}), nil))
	})
	t.Run("cluster", func(t *testing.T) {
		addrs := os.Getenv("HOPPER_TEST_REDIS_CLUSTER")
		if addrs == "" {
			t.Skip("HOPPER_TEST_REDIS_CLUSTER not set: skipping the Redis Cluster run")
		}
		t.Parallel()
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
		fn(t, newBackend(t, "cluster", prefix, c, nil))
	})
}

func newBackend(t *testing.T, name, prefix string, c redis.UniversalClient, mr *miniredis.Miniredis) *Backend {
	b := &Backend{Name: name, Client: c, Prefix: randomPrefix(prefix), Miniredis: mr}
	t.Cleanup(func() {
		if mr == nil {
			b.DeleteKeys()
		}
		_ = c.Close()
	})
	return b
}

// DeleteKeys removes the test's keys. The SCAN pattern is the test's own
// random prefix, never user input.
func (b *Backend) DeleteKeys() {
	ctx := context.Background()
	del := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, b.Prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	if cc, ok := b.Client.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return del(ctx, c) })
		return
	}
	_ = del(ctx, b.Client)
}

// QuietLogger silences go-redis' internal logging (dial failures in outage
// tests): install it with redis.SetLogger in TestMain.
type QuietLogger struct{}

// Printf discards the message.
func (QuietLogger) Printf(context.Context, string, ...any) {}

// EachURL runs fn as a subtest per backend for programs that connect by
// URL: "miniredis" with redisURL "" (the program embeds its own), and
// "redis" with redis://$HOPPER_TEST_REDIS_ADDR when that is set. Each run
// gets a fresh key prefix starting with base, whose keys are deleted from
// the real server afterwards.
func EachURL(t *testing.T, base string, fn func(t *testing.T, redisURL, prefix string)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, "", randomPrefix(base)) })
	t.Run("redis", func(t *testing.T) {
		addr := os.Getenv("HOPPER_TEST_REDIS_ADDR")
		if addr == "" {
			t.Skip("HOPPER_TEST_REDIS_ADDR not set: skipping the real-Redis run")
		}
		b := &Backend{Name: "redis", Client: redis.NewClient(&redis.Options{Addr: addr}), Prefix: randomPrefix(base)}
		t.Cleanup(func() {
			b.DeleteKeys()
			_ = b.Client.Close()
		})
		fn(t, "redis://"+addr, b.Prefix)
	})
}

func randomPrefix(base string) string {
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	return base + hex.EncodeToString(rb[:])
}
