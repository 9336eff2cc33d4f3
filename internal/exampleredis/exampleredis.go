// Package exampleredis connects the example programs to Redis: the server
// at REDIS_URL when it is set (any form internal/redisurl takes), else an
// embedded miniredis, so that every example runs with no setup.
package exampleredis

import (
	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper/internal/redisurl"
	"github.com/redis/go-redis/v9"
)

// Connect returns a client for redisURL, or for an embedded miniredis when
// it is empty, and a function that releases both.
func Connect(redisURL string) (redis.UniversalClient, func(), error) {
	if redisURL != "" {
		c, err := redisurl.Client(redisURL)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { _ = c.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return c, func() { _ = c.Close(); mr.Close() }, nil
}
