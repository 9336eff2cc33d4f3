// Package redisurl turns a Redis URL into a go-redis client, for the hopper
// command and the examples.
//
// Forms:
//
//	redis://[user:password@]host:port[/db]      a single server
//	rediss://...                                 the same over TLS
//	redis://[user:password@]h1:p1,h2:p2,h3:p3    a Redis Cluster (seed nodes; db must be 0)
//
// Query parameters go-redis understands (dial_timeout, read_timeout,
// pool_size, ...) pass through.
package redisurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrBadURL is wrapped by every parse error.
var ErrBadURL = errors.New("bad Redis URL")

// Client returns a client for rawURL: a *redis.Client for a single host, a
// *redis.ClusterClient for a comma-separated host list. It does not connect.
func Client(rawURL string) (redis.UniversalClient, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("%w: scheme %q (want redis:// or rediss://)", ErrBadURL, u.Scheme)
	}
	hosts := strings.Split(u.Host, ",")
	if len(hosts) == 1 {
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		return redis.NewClient(opts), nil
	}
	// A cluster: parse the URL once per seed host, so every option (TLS,
	// credentials, timeouts) is read the same way go-redis reads it.
	first := *u
	first.Host = hosts[0]
	opts, err := redis.ParseURL(first.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if opts.DB != 0 {
		return nil, fmt.Errorf("%w: a cluster has only database 0", ErrBadURL)
	}
	addrs := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h == "" || !strings.Contains(h, ":") {
			return nil, fmt.Errorf("%w: cluster host %q needs host:port", ErrBadURL, h)
		}
		addrs = append(addrs, h)
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig,
		DialTimeout: opts.DialTimeout, ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout,
		PoolSize: opts.PoolSize, MinIdleConns: opts.MinIdleConns, MaxRetries: opts.MaxRetries,
	}), nil
}
