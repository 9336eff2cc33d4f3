package redisurl

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestClient(t *testing.T) {
	c, err := Client("redis://127.0.0.1:6379")
	require.NoError(t, err)
	o := c.(*redis.Client).Options()
	require.Equal(t, "127.0.0.1:6379", o.Addr)
	require.Nil(t, o.TLSConfig)
	require.Zero(t, o.DB)

	c, err = Client("rediss://alice:s3cret@cache.example.com:6380/4?dial_timeout=2s")
	require.NoError(t, err)
	o = c.(*redis.Client).Options()
	require.Equal(t, "cache.example.com:6380", o.Addr)
	require.NotNil(t, o.TLSConfig, "rediss:// is TLS")
	require.Equal(t, "cache.example.com", o.TLSConfig.ServerName)
	require.Equal(t, "alice", o.Username)
	require.Equal(t, "s3cret", o.Password)
	require.Equal(t, 4, o.DB)
	require.Equal(t, "2s", o.DialTimeout.String())

	c, err = Client("redis://:pw@10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000")
	require.NoError(t, err)
	co := c.(*redis.ClusterClient).Options()
	require.Equal(t, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}, co.Addrs)
	require.Equal(t, "pw", co.Password)
	c, err = Client("rediss://h1:7000,h2:7000")
	require.NoError(t, err)
	require.NotNil(t, c.(*redis.ClusterClient).Options().TLSConfig)

	for _, bad := range []string{"", "http://localhost:6379", "localhost:6379", "redis://h1:1,h2:2/3",
		"redis://h1:1,,h2:2", "redis://h1:1,h2", "redis://host:6379/notadb", "redis://%zz"} {
		_, err := Client(bad)
		require.ErrorIs(t, err, ErrBadURL, bad)
	}
}
