package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// directDispatcher returns a dispatcher whose handler tests call directly,
// without Redis or a worker: its queue's client is never contacted.
func directDispatcher(t *testing.T, store EndpointStore, cfg *Config) *Dispatcher {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	q, err := hopper.NewQueue(c, "webhooks", nil)
	require.NoError(t, err)
	if cfg == nil {
		cfg = fastConfig()
	}
	d, err := New(q, store, cfg)
	require.NoError(t, err)
	t.Cleanup(d.CloseIdleConnections)
	return d
}

// deliveryJob builds the job Send would enqueue, as a handler receives it.
func deliveryJob(t *testing.T, eventID, endpointID, typ, body string) *hopper.Job {
	t.Helper()
	p, err := json.Marshal(delivery{V: 1, Endpoint: endpointID, EventID: eventID, Event: typ, Body: json.RawMessage(body)})
	require.NoError(t, err)
	return &hopper.Job{ID: DeliveryID(eventID, endpointID), Queue: "webhooks", Name: DefaultJobName, Payload: p,
		State: hopper.StateActive, MaxAttempts: 3, CreatedAt: time.Now()}
}

func TestStatusMapping(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second) // HTTP dates have whole seconds
	withHeader := func(code int, k, v, body string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(k, v)
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	const (
		done      = "done"
		permanent = "permanent"
		deferred  = "retry-after"
		failed    = "failed"
	)
	for _, tc := range []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
		age     time.Duration // of the delivery job
		want    string
		delay   time.Duration // for deferred
		inError string
	}{
		{"200", status(200, "ok"), 0, done, 0, ""},
		{"204", status(204, ""), 0, done, 0, ""},
		{"301", withHeader(301, "Location", "https://elsewhere.example.com/x", ""), 0, permanent, 0, "redirecting to https://elsewhere.example.com/x"},
		{"400", status(400, `{"error":"bad field"}`), 0, permanent, 0, `answered 400 Bad Request: {"error":"bad field"}`},
		{"401", status(401, "webhook: invalid signature"), 0, permanent, 0, "401 Unauthorized"},
		{"404", status(404, ""), 0, permanent, 0, "404 Not Found"},
		{"408", status(408, ""), 0, failed, 0, "408"},
		{"429 without Retry-After spends an attempt", status(429, "slow down"), 0, failed, 0, "429 Too Many Requests: slow down"},
		{"429 Retry-After seconds", withHeader(429, "Retry-After", "2", ""), 0, deferred, 2 * time.Second, "429"},
		{"503 Retry-After date", withHeader(503, "Retry-After", now.Add(30*time.Second).UTC().Format(http.TimeFormat), ""), 0, deferred, 30 * time.Second, "503"},
		{"500 Retry-After 0 waits the minimum", withHeader(500, "Retry-After", "0", ""), 0, deferred, MinRetryAfter, "500"},
		{"429 Retry-After in the past waits the minimum", withHeader(429, "Retry-After", now.Add(-time.Hour).UTC().Format(http.TimeFormat), ""), 0, deferred, MinRetryAfter, "429"},
		{"429 Retry-After capped", withHeader(429, "Retry-After", "99999999999999999999", ""), 0, deferred, time.Hour, "429"},
		{"429 Retry-After garbage", withHeader(429, "Retry-After", "soon", ""), 0, failed, 0, "429"},
		{"429 Retry-After past the window spends an attempt", withHeader(429, "Retry-After", "2", ""), 25 * time.Hour, failed, 0, "429"},
		{"500", status(500, "boom"), 0, failed, 0, "500 Internal Server Error: boom"},
		{"502", status(502, ""), 0, failed, 0, "502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tc.respond)
			store := memStore(t, endpoint("ep", rc.srv.URL+"/hook"))
			cfg := fastConfig()
			cfg.Clock = func() time.Time { return now }
			d := directDispatcher(t, store, cfg)
			job := deliveryJob(t, "evt-1", "ep", "task:created", `{"n":1}`)
			job.CreatedAt = now.Add(-tc.age)
			err := d.Handler().ProcessJob(context.Background(), job)
			require.Equal(t, 1, rc.count())
			var (
				pe *hopper.PermanentError
				ra *hopper.RetryAfterError
				se *StatusError
			)
			switch tc.want {
			case done:
				require.NoError(t, err)
				return
			case permanent:
				require.ErrorAs(t, err, &pe)
			case deferred:
				require.ErrorAs(t, err, &ra)
				require.Equal(t, tc.delay, ra.Delay)
			case failed:
				require.False(t, errors.As(err, &pe), "not permanent: %v", err)
				require.False(t, errors.As(err, &ra), "spends an attempt: %v", err)
			}
			require.ErrorAs(t, err, &se)
			require.Equal(t, "ep", se.Endpoint)
			require.Contains(t, err.Error(), tc.inError)
			require.True(t, strings.HasPrefix(se.Error(), "webhook: endpoint ep ("), se.Error())
		})
	}
}

func TestRequestHeadersAndBody(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := endpoint("ep", rc.srv.URL+"/hook")
	e.Headers = map[string]string{"x-team": "42"}
	now := time.Now()
	cfg := fastConfig()
	cfg.Clock = func() time.Time { return now }
	cfg.UserAgent = "acme-hooks/2"
	d := directDispatcher(t, memStore(t, e), cfg)
	body := `{"id":"evt-1","type":"task:created","occurred_at":"2030-01-02T03:04:05Z","data":{"n":1}}`
	job := deliveryJob(t, "evt-1", "ep", "task:created", body)
	job.AttemptsMade = 2
	require.NoError(t, d.Handler().ProcessJob(context.Background(), job))

	r := rc.requests()[0]
	require.Equal(t, body, string(r.body), "the stored body, byte for byte")
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "acme-hooks/2", r.header.Get("User-Agent"))
	require.Equal(t, "task:created", r.header.Get(HeaderEvent))
	require.Equal(t, "evt-1", r.header.Get(HeaderEventID))
	require.Equal(t, "wh:evt-1:ep", r.header.Get(HeaderDeliveryID))
	require.Equal(t, "3", r.header.Get(HeaderAttempt))
	require.Equal(t, "42", r.header.Get("X-Team"))
	require.Equal(t, Sign("secret-ep", now, []byte(body)), r.header.Get(HeaderSignature))
	require.NoError(t, Verify("secret-ep", r.header, r.body, 0, now))
}

func TestLargeResponseIsExcerpted(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("é", 4<<10) // 2-byte runes: the cut must not split one
	rc := newReceiver(t, status(400, big))
	d := directDispatcher(t, memStore(t, endpoint("ep", rc.srv.URL)), nil)
	err := d.Handler().ProcessJob(context.Background(), deliveryJob(t, "e", "ep", "t", `{}`))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, strings.Repeat("é", MaxResponseExcerpt/2), se.Body)
}

func TestDeliveryToRemovedOrDisabledEndpointIsSkipped(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	e := endpoint("ep", rc.srv.URL)
	e.Disabled, e.DisabledReason = true, "paused by the customer"
	d := directDispatcher(t, memStore(t, e), nil)
	require.NoError(t, d.Handler().ProcessJob(context.Background(), deliveryJob(t, "e", "ep", "t", `{}`)))
	require.NoError(t, d.Handler().ProcessJob(context.Background(), deliveryJob(t, "e", "gone", "t", `{}`)))
	require.Zero(t, rc.count())
}

func TestBadDeliveryPayloadIsPermanent(t *testing.T) {
	t.Parallel()
	d := directDispatcher(t, &MemoryStore{}, nil)
	err := d.Handler().ProcessJob(context.Background(), &hopper.Job{ID: "x", Name: DefaultJobName, Payload: []byte("nope")})
	var pe *hopper.PermanentError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, err.Error(), "webhook: job x")
}

func TestNetworkErrorIsRetried(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	url := rc.srv.URL
	rc.srv.Close() // nothing listens any more
	d := directDispatcher(t, memStore(t, endpoint("ep", url)), nil)
	err := d.Handler().ProcessJob(context.Background(), deliveryJob(t, "e", "ep", "t", `{}`))
	require.Error(t, err)
	var pe *hopper.PermanentError
	require.False(t, errors.As(err, &pe))
	require.Contains(t, err.Error(), "webhook: endpoint ep:")
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"Wed, 02 Jan 2030 03:05:05 GMT", time.Minute, true},
		{"Wednesday, 02-Jan-30 03:05:05 GMT", time.Minute, true}, // RFC 850
		{"Wed Jan  2 03:05:05 2030", time.Minute, true},          // asctime
		{"Wed, 02 Jan 2030 03:00:00 GMT", 0, true},               // past
		{"tomorrow", 0, false},
		{"99999999999999999999999", time.Duration(1<<63 - 1), true},
	} {
		d, ok := parseRetryAfter(tc.in, now)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, d, tc.in)
	}
}
