package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hopperq/hopper"
)

// Metadata keys set on every delivery job (hopper.Job.Metadata), so that
// dead-letter tooling and worker hooks can tell deliveries apart without
// decoding payloads.
const (
	MetaEndpoint = "webhook.endpoint" // Endpoint.ID
	MetaEvent    = "webhook.event"    // Event.Type
	MetaEventID  = "webhook.event_id" // Event.ID
)

// Event is something that happened in the app, to be delivered to every
// endpoint subscribed to its Type.
type Event struct {
	// Type routes the event to endpoints, e.g. "task:created": 1-100 bytes
	// of ASCII letters, digits, '-' and '_' in segments separated by ':' or
	// '.'. Required.
	Type string
	// ID identifies the event to receivers (Hopper-Event-Id) and makes Send
	// idempotent: sending an event with the same ID again adds no delivery
	// for an endpoint that already has one. 1-128 bytes of ASCII letters,
	// digits and - _ . : @ / + =. Defaults to a random "evt_..." ID (found in
	// each returned job's Metadata[MetaEventID]).
	ID string
	// Payload is the event's data as JSON; it becomes the "data" member of
	// the delivered body. Defaults to null.
	Payload json.RawMessage
	// OccurredAt is when the event happened. Defaults to the time of Send.
	OccurredAt time.Time
}

// envelope is the JSON body every endpoint receives for an event.
type envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt string          `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// delivery is the payload of a delivery job. Body is the exact request body
// (the envelope), so that every attempt sends the same bytes.
type delivery struct {
	V        int             `json:"v"`
	Endpoint string          `json:"endpoint"`
	EventID  string          `json:"event_id"`
	Event    string          `json:"event"`
	Body     json.RawMessage `json:"body"`
}

// Dispatcher fans events out to endpoints as hopper jobs and delivers them:
// Send enqueues one delivery job per subscribed endpoint; Handler is the
// hopper.Handler workers run for those jobs. Safe for concurrent use.
type Dispatcher struct {
	queue *hopper.Queue
	store EndpointStore
	cfg   Config
}

// New returns a dispatcher that enqueues deliveries on queue and finds
// endpoints in store. A *ValidationError (ErrInvalid) for a nil argument or
// a bad cfg field. It sends nothing anywhere.
func New(queue *hopper.Queue, store EndpointStore, cfg *Config) (*Dispatcher, error) {
	if queue == nil {
		return nil, invalid("queue", "nil", "a *hopper.Queue is required")
	}
	if store == nil {
		return nil, invalid("store", "nil", "an EndpointStore is required")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Dispatcher{queue: queue, store: store, cfg: c}, nil
}

// JobName returns the hopper job name of deliveries (Config.JobName).
func (d *Dispatcher) JobName() string { return d.cfg.JobName }

// CloseIdleConnections closes the idle keep-alive connections of the HTTP
// client, e.g. before a process exits or at the end of a test.
func (d *Dispatcher) CloseIdleConnections() { d.cfg.Client.CloseIdleConnections() }

// DeliveryID returns the ID of the delivery of event eventID to endpoint
// endpointID: its hopper job ID and its Hopper-Delivery-Id header,
// "wh:<event ID>:<endpoint ID>". Endpoint IDs contain no ':', so the ID
// splits unambiguously at its last ':'.
func DeliveryID(eventID, endpointID string) string { return "wh:" + eventID + ":" + endpointID }

// Send enqueues ev for delivery to every enabled endpoint subscribed to its
// type, atomically (one hopper AddBulk call, one round trip after the
// endpoint lookup): either every delivery is added or none is. Each delivery
// is a job of its own, retried on its own schedule, so a failing endpoint
// never delays the others.
//
// It returns one job per endpoint, ordered by endpoint ID; none (and no
// error) if no enabled endpoint subscribes. An endpoint a custom store
// returns that fails Endpoint.Validate is skipped and logged. Sending an event whose ID was
// sent before returns the existing deliveries with Duplicate set and adds
// only the deliveries of endpoints that had none (e.g. subscribed since).
//
// Errors: a *ValidationError (ErrInvalid) for a bad event, before anything
// is sent; the store's error; hopper's errors from AddBulk (for example
// hopper.ErrPayloadTooLarge: each delivery job carries the whole body, so
// the payload must fit hopper.QueueConfig.MaxPayloadBytes). After a Redis
// error the deliveries may or may not have been added: Send again with the
// same Event.ID to be sure.
func (d *Dispatcher) Send(ctx context.Context, ev Event) ([]*hopper.Job, error) {
	if why := checkType(ev.Type); why != "" {
		return nil, invalid("Event.Type", ev.Type, "%s", why)
	}
	if ev.ID == "" {
		ev.ID = "evt_" + rand.Text()
	} else if why := checkEventID(ev.ID); why != "" {
		return nil, invalid("Event.ID", ev.ID, "%s", why)
	}
	if len(ev.Payload) == 0 {
		ev.Payload = json.RawMessage("null")
	} else if !json.Valid(ev.Payload) {
		return nil, invalid("Event.Payload", string(ev.Payload), "is not valid JSON")
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = d.cfg.Clock()
	}
	eps, err := d.store.Endpoints(ctx, ev.Type)
	if err != nil {
		return nil, fmt.Errorf("webhook: send %s %s: find endpoints: %w", ev.Type, ev.ID, err)
	}
	eps = slices.DeleteFunc(eps, func(e Endpoint) bool { return e.Disabled || !matchAny(e.Events, ev.Type) })
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	eps = slices.CompactFunc(eps, func(a, b Endpoint) bool { return a.ID == b.ID })
	if len(eps) == 0 {
		return nil, nil
	}
	if len(eps) > hopper.MaxBulk {
		return nil, invalid("Event.Type", ev.Type, "has %d endpoints, more than one Send can enqueue (%d)", len(eps), hopper.MaxBulk)
	}
	body, err := marshal(envelope{ID: ev.ID, Type: ev.Type,
		OccurredAt: ev.OccurredAt.UTC().Format(time.RFC3339Nano), Data: ev.Payload})
	if err != nil {
		return nil, fmt.Errorf("webhook: send %s %s: encode body: %w", ev.Type, ev.ID, err)
	}
	jobs := make([]hopper.NewJob, 0, len(eps))
	for _, e := range eps {
		if err := e.Validate(); err != nil {
			// Only a custom store can return one (the built-in stores validate
			// in Put). Skip it rather than fail the event for every other
			// endpoint.
			d.cfg.Logger.Warn("webhook: skipping an invalid endpoint", "endpoint", e.ID, "event", ev.Type, "err", err)
			continue
		}
		p, err := marshal(delivery{V: 1, Endpoint: e.ID, EventID: ev.ID, Event: ev.Type, Body: body})
		if err != nil {
			return nil, fmt.Errorf("webhook: send %s %s: encode delivery: %w", ev.Type, ev.ID, err)
		}
		id := DeliveryID(ev.ID, e.ID)
		opts := &hopper.JobOptions{
			ID:       id,
			Attempts: d.cfg.Attempts,
			Backoff:  d.cfg.Backoff,
			Timeout:  e.timeout() + jobTimeoutMargin,
			Metadata: map[string]string{MetaEndpoint: e.ID, MetaEvent: ev.Type, MetaEventID: ev.ID},
		}
		if d.cfg.DedupWindow > 0 {
			opts.Unique = &hopper.Unique{Key: id, Window: d.cfg.DedupWindow}
		}
		jobs = append(jobs, hopper.NewJob{Name: d.cfg.JobName, Payload: p, Options: opts})
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	out, err := d.queue.AddBulk(ctx, jobs)
	if err != nil {
		return nil, fmt.Errorf("webhook: send %s %s: %w", ev.Type, ev.ID, err)
	}
	return out, nil
}

// marshal is json.Marshal without HTML escaping, so that "<", ">" and "&" in
// a payload reach receivers as they were sent, not as \u003c etc.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
