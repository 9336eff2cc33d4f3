package webhook

import "context"

// EndpointStore is where a Dispatcher finds endpoints. MemoryStore (endpoints
// configured in code) and RedisStore (endpoints managed at run time, shared by
// every process) implement it; so can an app's own database.
//
// The producer (Send) and the workers (the delivery handler) must see the
// same endpoints: a delivery looks its endpoint up again by ID when it runs,
// so that a changed URL or secret, a disabled or deleted endpoint takes
// effect for deliveries still queued.
//
// Implementations must be safe for concurrent use.
type EndpointStore interface {
	// Endpoints returns the endpoints subscribed to event type event (see
	// Match), disabled ones included or not. Returning extra endpoints is
	// harmless: the dispatcher checks every subscription again.
	Endpoints(ctx context.Context, event string) ([]Endpoint, error)
	// Get returns endpoint id, or an error matching ErrEndpointNotFound.
	Get(ctx context.Context, id string) (Endpoint, error)
	// Disable marks endpoint id disabled with reason, so that it receives
	// nothing more until it is enabled again. An error matching
	// ErrEndpointNotFound if there is no such endpoint.
	Disable(ctx context.Context, id, reason string) error
}
