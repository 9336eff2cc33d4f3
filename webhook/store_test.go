package webhook

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// adminStore is what both built-in stores offer.
type adminStore interface {
	EndpointStore
	Put(ctx context.Context, e Endpoint) error
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]Endpoint, error)
}

func ids(eps []Endpoint) []string {
	out := []string{}
	for _, e := range eps {
		out = append(out, e.ID)
	}
	return out
}

// testStore is the conformance test of an EndpointStore with CRUD.
func testStore(t *testing.T, s adminStore) {
	ctx := context.Background()
	for _, bad := range []Endpoint{
		{ID: "x", URL: "ftp://example.com/", Secret: "s", Events: []string{"*"}},
		{ID: "x", URL: "/relative", Secret: "s", Events: []string{"*"}},
		{ID: "x", URL: "https:///nohost", Secret: "s", Events: []string{"*"}},
		{ID: "x", URL: "https://example.com/", Events: []string{"*"}},
		{ID: "x:y", URL: "https://example.com/", Secret: "s", Events: []string{"*"}},
		{ID: "", URL: "https://example.com/", Secret: "s", Events: []string{"*"}},
		{ID: "x", URL: "https://example.com/", Secret: "s"},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"task*"}},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"*"}, Timeout: -time.Second},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"*"}, Timeout: time.Hour},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"*"}, Headers: map[string]string{"Hopper-Signature": "x"}},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"*"}, Headers: map[string]string{"content-type": "x"}},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"*"}, Headers: map[string]string{"X-A": "a\r\nX-B: b"}},
		{ID: "x", URL: "https://example.com/", Secret: "s", Events: []string{"*"}, Headers: map[string]string{"X A": "a"}},
	} {
		err := s.Put(ctx, bad)
		require.ErrorIs(t, err, ErrInvalid, "%+v", bad)
		require.Regexp(t, `^webhook: invalid Endpoint\.`, err.Error())
	}
	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "nothing invalid was stored")

	a := Endpoint{ID: "a", URL: "https://user:pw@a.example.com/hook?x=1", Secret: "sa", Events: []string{"task:*"},
		Timeout: 3 * time.Second, Headers: map[string]string{"X-Team": "42"}}
	require.NoError(t, s.Put(ctx, a))
	require.NoError(t, s.Put(ctx, endpoint("b", "https://b.example.com/", "task:created")))
	require.NoError(t, s.Put(ctx, endpoint("c", "http://c.example.com:8080/", "*")))
	require.NoError(t, s.Put(ctx, endpoint("d", "https://d.example.com/", "invoice.paid", "user.*")))

	lookup := func(typ string) []string {
		eps, err := s.Endpoints(ctx, typ)
		require.NoError(t, err)
		return ids(eps)
	}
	require.Equal(t, []string{"a", "b", "c"}, lookup("task:created"))
	require.Equal(t, []string{"a", "c"}, lookup("task:comment:added"))
	require.Equal(t, []string{"c", "d"}, lookup("invoice.paid"))
	require.Equal(t, []string{"c", "d"}, lookup("user.signup"))
	require.Equal(t, []string{"c"}, lookup("task"))

	got, err := s.Get(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, a, got)
	got.Events[0] = "changed"
	got.Headers["X-Team"] = "changed"
	again, err := s.Get(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, a, again, "Get returns a copy")
	_, err = s.Get(ctx, "nope")
	require.ErrorIs(t, err, ErrEndpointNotFound)

	// Changing subscriptions moves the endpoint in the index.
	a.Events = []string{"invoice.*"}
	require.NoError(t, s.Put(ctx, a))
	require.Equal(t, []string{"b", "c"}, lookup("task:created"))
	require.Equal(t, []string{"a", "c", "d"}, lookup("invoice.paid"))

	// Disable keeps the endpoint (and its subscriptions); Put enables it again.
	before := time.Now().Add(-time.Second)
	require.NoError(t, s.Disable(ctx, "b", "410 Gone"))
	b, err := s.Get(ctx, "b")
	require.NoError(t, err)
	require.True(t, b.Disabled)
	require.Equal(t, "410 Gone", b.DisabledReason)
	require.True(t, b.DisabledAt.After(before), b.DisabledAt)
	eps, err := s.Endpoints(ctx, "task:created")
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c"}, ids(eps))
	require.True(t, eps[0].Disabled, "stores report disabled endpoints; the dispatcher skips them")
	require.ErrorIs(t, s.Disable(ctx, "nope", "x"), ErrEndpointNotFound)
	b.Disabled = false
	require.NoError(t, s.Put(ctx, b))
	b, err = s.Get(ctx, "b")
	require.NoError(t, err)
	require.False(t, b.Disabled)
	require.Empty(t, b.DisabledReason)
	require.True(t, b.DisabledAt.IsZero())

	require.NoError(t, s.Delete(ctx, "c"))
	require.ErrorIs(t, s.Delete(ctx, "c"), ErrEndpointNotFound)
	require.Equal(t, []string{"d"}, lookup("user.x.y"))
	require.Equal(t, []string{"d"}, lookup("user.signup"))
	list, err = s.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "d"}, ids(list))
}

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	testStore(t, &MemoryStore{}) // the zero value is usable
	_, err := NewMemoryStore(endpoint("a", "https://a.example.com/"), endpoint("a", "https://b.example.com/"))
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewMemoryStore(endpoint("a", "nope"))
	require.ErrorIs(t, err, ErrInvalid)
}

func TestRedisStore(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		s := h.redisStore()
		testStore(t, s)

		ctx := context.Background()
		base := h.prefix + ":{webhook:endpoints}:"
		n, err := h.client.Exists(ctx, base+"defs", base+"sub:task:created").Result()
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "documented key layout")

		// A stale index entry (left by racing Puts) is filtered out by the
		// definition's own subscriptions.
		require.NoError(t, h.client.SAdd(ctx, base+"sub:*", "d").Err())
		eps, err := s.Endpoints(ctx, "task:created")
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, ids(eps))
		// And a stale ID without a definition too.
		require.NoError(t, h.client.SAdd(ctx, base+"sub:*", "ghost").Err())
		eps, err = s.Endpoints(ctx, "task:created")
		require.NoError(t, err)
		require.Equal(t, []string{"b"}, ids(eps))

		// Two stores on different prefixes are independent.
		other, err := NewRedisStore(h.client, h.prefix+"-other")
		require.NoError(t, err)
		list, err := other.List(ctx)
		require.NoError(t, err)
		require.Empty(t, list)
	})
}

func TestNewRedisStoreValidates(t *testing.T) {
	t.Parallel()
	_, err := NewRedisStore(nil, "")
	require.ErrorIs(t, err, ErrInvalid)
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer c.Close()
	_, err = NewRedisStore(c, "bad{prefix}")
	require.ErrorIs(t, err, ErrInvalid)
}
