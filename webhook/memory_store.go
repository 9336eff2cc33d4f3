package webhook

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is an EndpointStore kept in process memory, for apps that
// configure their endpoints in code. Every process that sends or delivers
// must be configured with the same endpoints. Disable (a 410 Gone answer)
// changes only the memory of the process that ran the delivery, until it
// restarts; use RedisStore when endpoints change at run time. The zero value is an empty,
// usable store. Safe for concurrent use.
type MemoryStore struct {
	mu sync.RWMutex
	m  map[string]Endpoint
}

// NewMemoryStore returns a store holding endpoints, which are validated
// (see Endpoint.Validate) and copied. Duplicate IDs are an error.
func NewMemoryStore(endpoints ...Endpoint) (*MemoryStore, error) {
	s := &MemoryStore{m: make(map[string]Endpoint, len(endpoints))}
	for _, e := range endpoints {
		if _, dup := s.m[e.ID]; dup {
			return nil, invalid("Endpoint.ID", e.ID, "is given twice")
		}
		if err := s.Put(context.Background(), e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Put adds or replaces endpoint e (by ID) after validating it. A disabled
// endpoint without DisabledAt gets the current time.
func (s *MemoryStore) Put(_ context.Context, e Endpoint) error {
	if err := e.Validate(); err != nil {
		return err
	}
	e = e.clone()
	if !e.Disabled {
		e.DisabledReason, e.DisabledAt = "", time.Time{}
	} else if e.DisabledAt.IsZero() {
		e.DisabledAt = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]Endpoint)
	}
	s.m[e.ID] = e
	return nil
}

// Get returns a copy of endpoint id, or ErrEndpointNotFound.
func (s *MemoryStore) Get(_ context.Context, id string) (Endpoint, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.m[id]
	if !ok {
		return Endpoint{}, fmt.Errorf("%w: %q", ErrEndpointNotFound, id)
	}
	return e.clone(), nil
}

// Delete removes endpoint id; ErrEndpointNotFound if there is none.
func (s *MemoryStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		return fmt.Errorf("%w: %q", ErrEndpointNotFound, id)
	}
	delete(s.m, id)
	return nil
}

// List returns copies of all endpoints, ordered by ID.
func (s *MemoryStore) List(_ context.Context) ([]Endpoint, error) {
	s.mu.RLock()
	out := make([]Endpoint, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e.clone())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Endpoints returns copies of the endpoints subscribed to event, disabled
// ones included, ordered by ID. It scans every endpoint: fine for the
// handful an app configures in code.
func (s *MemoryStore) Endpoints(_ context.Context, event string) ([]Endpoint, error) {
	s.mu.RLock()
	var out []Endpoint
	for _, e := range s.m {
		if matchAny(e.Events, event) {
			out = append(out, e.clone())
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Endpoint) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Disable marks endpoint id disabled with reason; ErrEndpointNotFound if
// there is none.
func (s *MemoryStore) Disable(_ context.Context, id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrEndpointNotFound, id)
	}
	e.Disabled, e.DisabledReason, e.DisabledAt = true, reason, time.Now()
	s.m[id] = e
	return nil
}
