package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// RedisStore is an EndpointStore kept in Redis, for endpoints managed at run
// time (e.g. by an app's settings page) and shared by every process. Safe for
// concurrent use; it holds no connection of its own and never closes the
// client.
//
// Keys, all under one Cluster hash tag (so it works on Redis Cluster):
//
//	<prefix>:{webhook:endpoints}:defs           hash  endpoint ID -> definition (JSON)
//	<prefix>:{webhook:endpoints}:disabled       hash  endpoint ID -> {"reason", "at"} (JSON)
//	<prefix>:{webhook:endpoints}:sub:<pattern>  set   IDs of the endpoints subscribed to pattern
//
// The hash tag contains ':', which hopper queue names cannot, so these keys
// never share a key space with a queue, whatever the queue is called.
// Secrets are stored in clear in the defs hash: protect the Redis server
// accordingly.
//
// A lookup (Endpoints) reads only the subscription sets of the patterns that
// can match the event type (see Match), so it costs one round trip and
// O(segments of the type + matching endpoints), however many endpoints
// exist. No command takes a key pattern (no KEYS, no SCAN).
type RedisStore struct {
	c        redis.UniversalClient
	defs     string
	disabled string
	subBase  string
}

// NewRedisStore returns the store of endpoints kept under prefix on client
// ("" means hopper.DefaultPrefix; same alphabet as hopper.QueueConfig.Prefix:
// 1-100 bytes of ASCII letters, digits, '-', '_', '.' and ':'). It sends
// nothing to Redis.
func NewRedisStore(client redis.UniversalClient, prefix string) (*RedisStore, error) {
	if client == nil {
		return nil, invalid("client", "nil", "a Redis client is required")
	}
	if prefix == "" {
		prefix = hopper.DefaultPrefix
	}
	if why := checkChars(prefix, 100, "-_.:"); why != "" {
		return nil, invalid("RedisStore prefix", prefix, "%s", why)
	}
	base := prefix + ":{webhook:endpoints}:"
	return &RedisStore{c: client, defs: base + "defs", disabled: base + "disabled", subBase: base + "sub:"}, nil
}

func (s *RedisStore) sub(pattern string) string { return s.subBase + pattern }

// storedEndpoint is the JSON of an endpoint in the defs hash.
type storedEndpoint struct {
	URL       string            `json:"url"`
	Secret    string            `json:"secret"`
	Events    []string          `json:"events"`
	TimeoutMs int64             `json:"timeout_ms,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// storedDisabled is the JSON of an entry in the disabled hash.
type storedDisabled struct {
	Reason string `json:"reason"`
	At     int64  `json:"at"` // ms since the epoch
}

func decodeEndpoint(id, def, disabled string) (Endpoint, error) {
	var se storedEndpoint
	if err := json.Unmarshal([]byte(def), &se); err != nil {
		return Endpoint{}, fmt.Errorf("webhook: endpoint %s: corrupt definition in Redis: %w", id, err)
	}
	e := Endpoint{ID: id, URL: se.URL, Secret: se.Secret, Events: se.Events,
		Timeout: time.Duration(se.TimeoutMs) * time.Millisecond, Headers: se.Headers}
	if disabled != "" {
		var sd storedDisabled
		if err := json.Unmarshal([]byte(disabled), &sd); err != nil {
			return Endpoint{}, fmt.Errorf("webhook: endpoint %s: corrupt disabled record in Redis: %w", id, err)
		}
		e.Disabled, e.DisabledReason, e.DisabledAt = true, sd.Reason, time.UnixMilli(sd.At)
	}
	return e, nil
}

// Put adds or replaces endpoint e (by ID) after validating it, in two round
// trips: it reads the old subscriptions, then rewrites the definition and
// the subscription index in one MULTI/EXEC. Put with Disabled false enables
// a disabled endpoint; with Disabled true it stores it disabled (DisabledAt
// defaults to now). Events are stored sorted, without duplicates.
//
// Concurrent Puts of one ID may leave the ID in a subscription set it no
// longer has; that is harmless (lookups check the definition) and the next
// Put or Delete of the ID tidies it.
func (s *RedisStore) Put(ctx context.Context, e Endpoint) error {
	if err := e.Validate(); err != nil {
		return err
	}
	events := slices.Clone(e.Events)
	slices.Sort(events)
	events = slices.Compact(events)
	def, err := json.Marshal(storedEndpoint{URL: e.URL, Secret: e.Secret, Events: events,
		TimeoutMs: e.Timeout.Milliseconds(), Headers: e.Headers})
	if err != nil {
		return fmt.Errorf("webhook: put endpoint %s: %w", e.ID, err)
	}
	var dis []byte
	if e.Disabled {
		at := e.DisabledAt
		if at.IsZero() {
			at = time.Now()
		}
		if dis, err = json.Marshal(storedDisabled{Reason: e.DisabledReason, At: at.UnixMilli()}); err != nil {
			return fmt.Errorf("webhook: put endpoint %s: %w", e.ID, err)
		}
	}
	old, err := s.oldEvents(ctx, e.ID)
	if err != nil {
		return fmt.Errorf("webhook: put endpoint %s: %w", e.ID, err)
	}
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, pat := range old {
			if !slices.Contains(events, pat) {
				p.SRem(ctx, s.sub(pat), e.ID)
			}
		}
		for _, pat := range events {
			p.SAdd(ctx, s.sub(pat), e.ID)
		}
		p.HSet(ctx, s.defs, e.ID, def)
		if e.Disabled {
			p.HSet(ctx, s.disabled, e.ID, dis)
		} else {
			p.HDel(ctx, s.disabled, e.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: put endpoint %s: %w", e.ID, err)
	}
	return nil
}

// oldEvents returns the stored subscriptions of id (nil if it has none).
func (s *RedisStore) oldEvents(ctx context.Context, id string) ([]string, error) {
	def, err := s.c.HGet(ctx, s.defs, id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var se storedEndpoint
	if json.Unmarshal([]byte(def), &se) != nil {
		return nil, nil // corrupt: overwritten by the caller; its index entries stay stale but harmless
	}
	return se.Events, nil
}

// Get returns endpoint id, or ErrEndpointNotFound. One round trip.
func (s *RedisStore) Get(ctx context.Context, id string) (Endpoint, error) {
	var def, dis *redis.StringCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		def = p.HGet(ctx, s.defs, id)
		dis = p.HGet(ctx, s.disabled, id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Endpoint{}, fmt.Errorf("webhook: get endpoint %s: %w", id, err)
	}
	if errors.Is(def.Err(), redis.Nil) {
		return Endpoint{}, fmt.Errorf("%w: %q", ErrEndpointNotFound, id)
	}
	return decodeEndpoint(id, def.Val(), dis.Val())
}

// Delete removes endpoint id and its subscriptions; ErrEndpointNotFound if
// there is none. Two round trips.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	def, err := s.c.HGet(ctx, s.defs, id).Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w: %q", ErrEndpointNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("webhook: delete endpoint %s: %w", id, err)
	}
	var se storedEndpoint
	_ = json.Unmarshal([]byte(def), &se) // corrupt: delete the definition anyway
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, pat := range se.Events {
			p.SRem(ctx, s.sub(pat), id)
		}
		p.HDel(ctx, s.defs, id)
		p.HDel(ctx, s.disabled, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("webhook: delete endpoint %s: %w", id, err)
	}
	return nil
}

// List returns every endpoint, ordered by ID, in one round trip (HGETALL:
// meant for admin pages and tests, not for hot paths of stores with very
// many endpoints).
func (s *RedisStore) List(ctx context.Context) ([]Endpoint, error) {
	var defs, dis *redis.MapStringStringCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		defs = p.HGetAll(ctx, s.defs)
		dis = p.HGetAll(ctx, s.disabled)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: list endpoints: %w", err)
	}
	out := make([]Endpoint, 0, len(defs.Val()))
	for id, def := range defs.Val() {
		e, err := decodeEndpoint(id, def, dis.Val()[id])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// lookupScript returns the endpoints subscribed to any of a set of patterns.
//
// KEYS[1]    defs hash (id -> definition JSON)
// KEYS[2]    disabled hash (id -> disabled JSON)
// KEYS[3..n] subscription sets of the candidate patterns of one event type
// ARGV       none
// Returns    a flat array id1, def1, disabled1, id2, ... for every subscribed
//
//	ID that still has a definition; disabled is "" when enabled.
var lookupScript = redis.NewScript(`
local ids = redis.call('SUNION', unpack(KEYS, 3))
local out = {}
for _, id in ipairs(ids) do
  local def = redis.call('HGET', KEYS[1], id)
  if def then
    out[#out + 1] = id
    out[#out + 1] = def
    out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
  end
end
return out
`)

// Endpoints returns the endpoints subscribed to event, disabled ones
// included, ordered by ID. One round trip.
func (s *RedisStore) Endpoints(ctx context.Context, event string) ([]Endpoint, error) {
	pats := candidatePatterns(event)
	keys := make([]string, 0, 2+len(pats))
	keys = append(keys, s.defs, s.disabled)
	for _, p := range pats {
		keys = append(keys, s.sub(p))
	}
	res, err := lookupScript.Run(ctx, s.c, keys).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("webhook: endpoints for %s: %w", event, err)
	}
	var out []Endpoint
	for i := 0; i+2 < len(res); i += 3 {
		e, err := decodeEndpoint(res[i], res[i+1], res[i+2])
		if err != nil {
			return nil, err
		}
		if matchAny(e.Events, event) { // the index may be stale after concurrent Puts
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// disableScript marks an existing endpoint disabled.
//
// KEYS[1] defs hash, KEYS[2] disabled hash
// ARGV[1] endpoint ID, ARGV[2] disabled record (JSON)
// Returns 1 if the endpoint exists (it is now disabled), 0 if it does not.
var disableScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// Disable marks endpoint id disabled with reason, atomically with the check
// that it exists (ErrEndpointNotFound if not). One round trip.
func (s *RedisStore) Disable(ctx context.Context, id, reason string) error {
	rec, err := json.Marshal(storedDisabled{Reason: reason, At: time.Now().UnixMilli()})
	if err != nil {
		return fmt.Errorf("webhook: disable endpoint %s: %w", id, err)
	}
	n, err := disableScript.Run(ctx, s.c, []string{s.defs, s.disabled}, id, rec).Int()
	if err != nil {
		return fmt.Errorf("webhook: disable endpoint %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrEndpointNotFound, id)
	}
	return nil
}
