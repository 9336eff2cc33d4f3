package hopper

import (
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/faultproxy"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// proxy is a fault proxy (internal/faultproxy) in front of a test's Redis.
type proxy struct {
	*faultproxy.Proxy
	t *testing.T
}

func newProxy(t *testing.T, target string) *proxy {
	p, err := faultproxy.New(target)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return &proxy{Proxy: p, t: t}
}

// cut closes the listener and every connection: clients see resets and
// refused connections.
func (p *proxy) cut() { p.Down() }

// restore listens again on the same address.
func (p *proxy) restore() { require.NoError(p.t, p.Up()) }

// client returns a client that talks to Redis through the proxy, with short
// timeouts so that failures surface fast.
func (p *proxy) client(h *harness) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1})
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

// addr returns the backend's single-node address, or "" on a cluster.
func (h *harness) addr() string {
	if c, ok := h.client.(*redis.Client); ok {
		return c.Options().Addr
	}
	return ""
}
