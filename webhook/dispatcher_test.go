package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/stretchr/testify/require"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	q := directDispatcher(t, &MemoryStore{}, nil).queue
	_, err := New(nil, &MemoryStore{}, nil)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = New(q, nil, nil)
	require.ErrorIs(t, err, ErrInvalid)
	for field, cfg := range map[string]*Config{
		"Config.Attempts":         {Attempts: -1},
		"Config.JobName":          {JobName: "has space"},
		"Config.MaxRetryAfter":    {MaxRetryAfter: time.Millisecond},
		"Config.RetryAfterWindow": {RetryAfterWindow: -time.Second},
		"Config.DedupWindow":      {DedupWindow: -time.Second},
		"Config.Backoff":          {Backoff: hopper.Fixed(-time.Second)},
	} {
		_, err := New(q, &MemoryStore{}, cfg)
		require.ErrorIs(t, err, hopper.ErrInvalid, field)
		require.Contains(t, err.Error(), "webhook: invalid "+field, field)
	}

	// New copies the config and the client; the caller's are untouched.
	client := &http.Client{}
	cfg := &Config{Client: client}
	d, err := New(q, &MemoryStore{}, cfg)
	require.NoError(t, err)
	require.Nil(t, client.CheckRedirect)
	require.Empty(t, cfg.JobName)
	require.Equal(t, DefaultJobName, d.JobName())
}

func TestSendValidates(t *testing.T) {
	t.Parallel()
	d := directDispatcher(t, memStore(t, endpoint("ep", "https://example.com/")), nil)
	ctx := context.Background()
	for field, ev := range map[string]Event{
		"Event.Type":    {Type: ""},
		"Event.ID":      {Type: "task:created", ID: "has space"},
		"Event.Payload": {Type: "task:created", Payload: json.RawMessage("{not json")},
	} {
		_, err := d.Send(ctx, ev)
		require.ErrorIs(t, err, ErrInvalid, field)
		require.ErrorIs(t, err, hopper.ErrInvalid, field)
		require.True(t, strings.HasPrefix(err.Error(), "webhook: invalid "+field), err.Error())
	}
	_, err := d.Send(ctx, Event{Type: "task:*"})
	require.ErrorContains(t, err, "wildcards belong in endpoint subscriptions")
}

// One event, three endpoints: two answer 200, one answers 500 forever. The
// two complete after one request each; the third is dead after its three
// attempts; none waits for another.
func TestFanOut(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		a := newReceiver(t, status(200, "ok-a"))
		b := newReceiver(t, status(202, "ok-b"))
		c := newReceiver(t, status(500, "down"))
		store := h.redisStore()
		require.NoError(t, store.Put(ctx, endpoint("a", a.srv.URL, "task:*")))
		require.NoError(t, store.Put(ctx, endpoint("b", b.srv.URL, "task:created")))
		require.NoError(t, store.Put(ctx, endpoint("c", c.srv.URL, "*")))
		require.NoError(t, store.Put(ctx, endpoint("other", a.srv.URL, "invoice.*")))
		q := h.queue()
		d := h.dispatcher(q, store, nil)
		h.worker(d.Handler())

		jobs, err := d.Send(ctx, Event{Type: "task:created", ID: "evt-1", Payload: json.RawMessage(`{"task": 1}`)})
		require.NoError(t, err)
		require.Len(t, jobs, 3)
		for i, id := range []string{"a", "b", "c"} {
			require.Equal(t, "wh:evt-1:"+id, jobs[i].ID)
			require.False(t, jobs[i].Duplicate)
			require.Equal(t, DefaultJobName, jobs[i].Name)
			require.Equal(t, map[string]string{MetaEndpoint: id, MetaEvent: "task:created", MetaEventID: "evt-1"}, jobs[i].Metadata)
		}

		ja := waitState(t, q, "wh:evt-1:a", hopper.StateCompleted)
		jb := waitState(t, q, "wh:evt-1:b", hopper.StateCompleted)
		jc := waitState(t, q, "wh:evt-1:c", hopper.StateDead)
		require.Equal(t, 1, a.count())
		require.Equal(t, 1, b.count())
		require.Equal(t, 3, c.count(), "three attempts")
		require.Equal(t, 3, jc.AttemptsMade)
		require.Contains(t, jc.DeadReason, "attempts exhausted: 3 of 3")
		require.Contains(t, jc.LastError, "webhook: endpoint c (")
		require.Contains(t, jc.LastError, "answered 500 Internal Server Error: down")

		var ra, rb Result
		require.NoError(t, json.Unmarshal(ja.Result, &ra))
		require.NoError(t, json.Unmarshal(jb.Result, &rb))
		require.Equal(t, Result{Endpoint: "a", URL: a.srv.URL, Delivered: true, Status: 200, Response: "ok-a",
			DurationMs: ra.DurationMs, Attempt: 1}, ra)
		require.Equal(t, 202, rb.Status)
		require.Equal(t, "ok-b", rb.Response)

		// Every request is signed with its endpoint's secret over the exact
		// body, and carries the event.
		for id, rc := range map[string]*receiver{"a": a, "b": b, "c": c} {
			for i, r := range rc.requests() {
				require.NoError(t, Verify("secret-"+id, r.header, r.body, 0, time.Now()), id)
				require.Equal(t, "wh:evt-1:"+id, r.header.Get(HeaderDeliveryID))
				require.Equal(t, "task:created", r.header.Get(HeaderEvent))
				require.Equal(t, "evt-1", r.header.Get(HeaderEventID))
				require.Equal(t, DefaultUserAgent, r.header.Get("User-Agent"))
				require.Equal(t, strconv.Itoa(i+1), r.header.Get(HeaderAttempt))
				var body map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(r.body, &body))
				require.JSONEq(t, `"evt-1"`, string(body["id"]))
				require.JSONEq(t, `"task:created"`, string(body["type"]))
				require.JSONEq(t, `{"task":1}`, string(body["data"]))
				occurred, err := time.Parse(time.RFC3339Nano, strings.Trim(string(body["occurred_at"]), `"`))
				require.NoError(t, err)
				require.WithinDuration(t, time.Now(), occurred, time.Minute)
			}
		}
	})
}

// A 429 with Retry-After: 1 is retried no sooner than 1s later, without
// spending an attempt.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		q := h.queue()
		d := h.dispatcher(q, memStore(t, endpoint("ep", rc.srv.URL)), nil)
		h.worker(d.Handler())
		_, err := d.Send(context.Background(), Event{Type: "task:created", ID: "evt-1"})
		require.NoError(t, err)
		j := waitState(t, q, "wh:evt-1:ep", hopper.StateCompleted)
		reqs := rc.requests()
		require.Len(t, reqs, 2)
		// The retry is due 1000ms after the attempt was recorded, which is
		// after the receiver stamped the first request; 5ms allows for the
		// millisecond rounding of due times.
		gap := reqs[1].at.Sub(reqs[0].at)
		require.GreaterOrEqual(t, gap, time.Second-5*time.Millisecond, "retried after %s", gap)
		require.Equal(t, 1, j.AttemptsMade, "the 429 did not spend an attempt")
		require.Equal(t, "1", reqs[1].header.Get(HeaderAttempt))
	})
}

// A 410 Gone disables the endpoint and completes the delivery; the next
// Send skips the endpoint.
func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		gone := newReceiver(t, status(http.StatusGone, "unsubscribed"))
		live := newReceiver(t, nil)
		store := h.redisStore()
		require.NoError(t, store.Put(ctx, endpoint("gone", gone.srv.URL)))
		require.NoError(t, store.Put(ctx, endpoint("live", live.srv.URL)))
		q := h.queue()
		d := h.dispatcher(q, store, nil)
		h.worker(d.Handler())

		_, err := d.Send(ctx, Event{Type: "task:created", ID: "evt-1"})
		require.NoError(t, err)
		j := waitState(t, q, "wh:evt-1:gone", hopper.StateCompleted)
		waitState(t, q, "wh:evt-1:live", hopper.StateCompleted)
		require.Equal(t, 1, gone.count(), "no retry")
		var r Result
		require.NoError(t, json.Unmarshal(j.Result, &r))
		require.Equal(t, http.StatusGone, r.Status)
		require.False(t, r.Delivered)
		require.Contains(t, r.Note, "endpoint disabled: the receiver answered 410 Gone to delivery wh:evt-1:gone")

		e, err := store.Get(ctx, "gone")
		require.NoError(t, err)
		require.True(t, e.Disabled)
		require.Contains(t, e.DisabledReason, "410 Gone")

		jobs, err := d.Send(ctx, Event{Type: "task:created", ID: "evt-2"})
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, "wh:evt-2:live", jobs[0].ID)
		waitState(t, q, "wh:evt-2:live", hopper.StateCompleted)
		require.Equal(t, 1, gone.count())
		require.Equal(t, 2, live.count())
	})
}

// A 4xx other than 408, 410 and 429 dead-letters the delivery at once, with
// the status in the dead reason.
func TestClientErrorDeadLetters(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		rc := newReceiver(t, status(http.StatusUnprocessableEntity, `{"error":"unknown field"}`))
		q := h.queue()
		d := h.dispatcher(q, memStore(t, endpoint("ep", rc.srv.URL)), nil)
		h.worker(d.Handler())
		_, err := d.Send(context.Background(), Event{Type: "task:created", ID: "evt-1"})
		require.NoError(t, err)
		j := waitState(t, q, "wh:evt-1:ep", hopper.StateDead)
		require.Equal(t, 1, rc.count())
		require.Equal(t, 1, j.AttemptsMade)
		require.Contains(t, j.DeadReason, "permanent failure: webhook: endpoint ep (")
		require.Contains(t, j.DeadReason, `answered 422 Unprocessable Entity: {"error":"unknown field"}`)
	})
}

// A receiver slower than the endpoint timeout fails the attempt; the retry
// succeeds.
func TestTimeoutRetries(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				select { // hang until the sender gives up (bounded, in case it never does)
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		e := endpoint("ep", rc.srv.URL)
		e.Timeout = 200 * time.Millisecond
		q := h.queue()
		d := h.dispatcher(q, memStore(t, e), nil)
		h.worker(d.Handler())
		_, err := d.Send(context.Background(), Event{Type: "task:created", ID: "evt-1"})
		require.NoError(t, err)
		j := waitState(t, q, "wh:evt-1:ep", hopper.StateCompleted)
		require.Equal(t, 2, rc.count())
		require.Equal(t, 2, j.AttemptsMade)
		reqs := rc.requests()
		require.Equal(t, "2", reqs[1].header.Get(HeaderAttempt))
	})
}

// A redirect is a permanent failure naming the Location; the other host
// never sees the delivery (or its signature).
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		other := newReceiver(t, nil)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.srv.URL+"/elsewhere", http.StatusTemporaryRedirect)
		})
		q := h.queue()
		d := h.dispatcher(q, memStore(t, endpoint("ep", rc.srv.URL)), nil)
		h.worker(d.Handler())
		_, err := d.Send(context.Background(), Event{Type: "task:created", ID: "evt-1"})
		require.NoError(t, err)
		j := waitState(t, q, "wh:evt-1:ep", hopper.StateDead)
		require.Equal(t, 1, rc.count())
		// A followed redirect would have happened inside the attempt, before
		// the job was dead-lettered: no observation window is needed.
		require.Zero(t, other.count())
		require.Contains(t, j.DeadReason, "307 Temporary Redirect redirecting to "+other.srv.URL+"/elsewhere")
	})
}

// Sending an event again adds nothing for endpoints that have its delivery,
// but adds the deliveries of endpoints subscribed since.
func TestIdempotentResend(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		a := newReceiver(t, nil)
		b := newReceiver(t, nil)
		store := h.redisStore()
		require.NoError(t, store.Put(ctx, endpoint("a", a.srv.URL)))
		q := h.queue()
		d := h.dispatcher(q, store, nil)
		ev := Event{Type: "task:created", ID: "evt-1", Payload: json.RawMessage(`{"n":1}`)}

		first, err := d.Send(ctx, ev)
		require.NoError(t, err)
		require.Len(t, first, 1)
		require.False(t, first[0].Duplicate)
		again, err := d.Send(ctx, ev)
		require.NoError(t, err)
		require.Len(t, again, 1)
		require.True(t, again[0].Duplicate)
		require.Equal(t, first[0].ID, again[0].ID)

		h.worker(d.Handler())
		waitState(t, q, "wh:evt-1:a", hopper.StateCompleted)
		require.NoError(t, store.Put(ctx, endpoint("b", b.srv.URL)))
		third, err := d.Send(ctx, ev)
		require.NoError(t, err)
		require.Len(t, third, 2)
		require.True(t, third[0].Duplicate, "a was delivered already")
		require.Equal(t, hopper.StateCompleted, third[0].State)
		require.False(t, third[1].Duplicate, "b subscribed since")
		waitState(t, q, "wh:evt-1:b", hopper.StateCompleted)
		require.Equal(t, 1, a.count())
		require.Equal(t, 1, b.count())
	})
}

// With DedupWindow, a re-send stays a no-op after the delivery job is gone.
func TestDedupWindow(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue()
		cfg := fastConfig()
		cfg.DedupWindow = time.Hour
		d := h.dispatcher(q, memStore(t, endpoint("a", "https://a.example.com/")), cfg)
		ev := Event{Type: "task:created", ID: "evt-1"}
		_, err := d.Send(ctx, ev)
		require.NoError(t, err)
		require.NoError(t, q.Remove(ctx, "wh:evt-1:a", nil))
		jobs, err := d.Send(ctx, ev)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.True(t, jobs[0].Duplicate)

		// Without it, the same sequence delivers again.
		d2 := h.dispatcher(q, memStore(t, endpoint("b", "https://b.example.com/")), nil)
		_, err = d2.Send(ctx, ev)
		require.NoError(t, err)
		require.NoError(t, q.Remove(ctx, "wh:evt-1:b", nil))
		jobs, err = d2.Send(ctx, ev)
		require.NoError(t, err)
		require.False(t, jobs[0].Duplicate)
	})
}

func TestSendWithoutSubscribers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue()
		e := endpoint("off", "https://off.example.com/")
		e.Disabled = true
		d := h.dispatcher(q, memStore(t, endpoint("inv", "https://inv.example.com/", "invoice.*"), e), nil)
		jobs, err := d.Send(context.Background(), Event{Type: "task:created"})
		require.NoError(t, err)
		require.Empty(t, jobs)
		counts, err := q.Counts(context.Background())
		require.NoError(t, err)
		require.Zero(t, counts.Waiting)
	})
}

func TestSendGeneratesEventID(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue()
		d := h.dispatcher(q, memStore(t, endpoint("a", "https://a.example.com/")), nil)
		j1, err := d.Send(context.Background(), Event{Type: "task:created"})
		require.NoError(t, err)
		j2, err := d.Send(context.Background(), Event{Type: "task:created"})
		require.NoError(t, err)
		id1, id2 := j1[0].Metadata[MetaEventID], j2[0].Metadata[MetaEventID]
		require.True(t, strings.HasPrefix(id1, "evt_"), id1)
		require.NotEqual(t, id1, id2)
		require.Equal(t, DeliveryID(id1, "a"), j1[0].ID)
	})
}

// badStore is a custom store that returns an endpoint the built-in stores
// would refuse.
type badStore struct{ *MemoryStore }

func (s badStore) Endpoints(ctx context.Context, event string) ([]Endpoint, error) {
	eps, err := s.MemoryStore.Endpoints(ctx, event)
	return append(eps, Endpoint{ID: "bad", URL: "ftp://x", Events: []string{"*"}}), err
}

func TestSendSkipsInvalidEndpointsOfCustomStores(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		q := h.queue()
		d := h.dispatcher(q, badStore{memStore(t, endpoint("good", "https://good.example.com/"))}, nil)
		jobs, err := d.Send(context.Background(), Event{Type: "task:created", ID: "e1"})
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		require.Equal(t, "wh:e1:good", jobs[0].ID)
	})
}

// The body is the envelope with the payload as sent: compacted, but with
// no HTML escaping.
func TestBodyKeepsPayloadVerbatim(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		rc := newReceiver(t, nil)
		q := h.queue()
		d := h.dispatcher(q, memStore(t, endpoint("ep", rc.srv.URL)), nil)
		h.worker(d.Handler())
		at := time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))
		_, err := d.Send(context.Background(), Event{Type: "page.published", ID: "e1", OccurredAt: at,
			Payload: json.RawMessage(`{ "html": "<b>Tom & Jerry</b>", "n": [1, 2] }`)})
		require.NoError(t, err)
		waitState(t, q, "wh:e1:ep", hopper.StateCompleted)
		require.Equal(t, `{"id":"e1","type":"page.published","occurred_at":"2030-01-02T02:04:05.0000006Z",`+
			`"data":{"html":"<b>Tom & Jerry</b>","n":[1,2]}}`, string(rc.requests()[0].body))
	})
}
