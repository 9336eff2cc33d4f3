package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "test-secret-0123456789abcdef"

func backends(t *testing.T) map[string]redis.UniversalClient {
	mr := miniredis.RunT(t)
	out := map[string]redis.UniversalClient{"miniredis": redis.NewClient(&redis.Options{Addr: mr.Addr()})}
	if addr := os.Getenv("HOPPER_TEST_REDIS_ADDR"); addr != "" {
		out["redis"] = redis.NewClient(&redis.Options{Addr: addr})
	}
	for _, c := range out {
		t.Cleanup(func() { _ = c.Close() })
	}
	return out
}

func prefix(t *testing.T, c redis.UniversalClient) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := "ex" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

func TestDemo(t *testing.T) {
	for name, c := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a, err := newApp(c, prefix(t, c), secret)
			require.NoError(t, err)
			var out bytes.Buffer
			require.NoError(t, runDemo(context.Background(), &out, a, secret))
			require.Equal(t, `POST /api/signup ann@example.com -> 202
POST /api/signup bob@example.com -> 202
GET /api/cron/hopper without secret -> 401
GET /api/cron/hopper with secret -> 200 completed=2 failed=0 dead=0
queue emails: 0 waiting, 2 completed
`, out.String())
		})
	}
}

func TestTickEndpointAuth(t *testing.T) {
	for name, c := range backends(t) {
		t.Run(name, func(t *testing.T) {
			a, err := newApp(c, prefix(t, c), secret)
			require.NoError(t, err)
			for auth, want := range map[string]int{
				"":                       http.StatusUnauthorized,
				"Bearer nope":            http.StatusUnauthorized,
				"Basic " + secret:        http.StatusUnauthorized,
				"Bearer " + secret:       http.StatusOK,
				"Bearer " + secret + " ": http.StatusUnauthorized,
			} {
				req := httptest.NewRequest(http.MethodGet, "/api/cron/hopper", nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				rr := httptest.NewRecorder()
				a.mux.ServeHTTP(rr, req)
				require.Equal(t, want, rr.Code, "auth %q", auth)
				if want == http.StatusOK {
					require.JSONEq(t, `{"queues":[{"queue":"emails","promoted":0,"recovered":0,"dead_lettered":0,"schedules_fired":0}],"completed":0,"failed":0,"dead":0,"duration_ms":0}`,
						zeroDuration(rr.Body.String()))
				} else {
					require.Contains(t, rr.Body.String(), `"error"`)
				}
			}
		})
	}
}

// zeroDuration blanks the timing field so the body can be compared.
func zeroDuration(body string) string {
	i := bytes.Index([]byte(body), []byte(`"duration_ms":`))
	if i < 0 {
		return body
	}
	j := i + len(`"duration_ms":`)
	k := j
	for k < len(body) && body[k] >= '0' && body[k] <= '9' {
		k++
	}
	return body[:j] + "0" + body[k:]
}
