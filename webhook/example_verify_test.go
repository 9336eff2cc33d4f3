package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hopperq/hopper/webhook"
)

// A receiver checks the Hopper-Signature header against the raw body before
// trusting a delivery.
func ExampleVerify() {
	const secret = "whsec_example"
	body := []byte(`{"id":"evt_1","type":"task:created","occurred_at":"2030-01-02T03:04:05Z","data":{"task":42}}`)
	sentAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	// What the dispatcher sends (Sign is exported for receivers' tests).
	header := http.Header{}
	header.Set(webhook.HeaderSignature, webhook.Sign(secret, sentAt, body))
	fmt.Println(header.Get("Hopper-Signature"))

	// Received a minute later: genuine.
	fmt.Println(webhook.Verify(secret, header, body, 0, sentAt.Add(time.Minute)))
	// A changed body, or the wrong secret: rejected.
	fmt.Println(webhook.Verify(secret, header, []byte(`{"id":"evt_1","data":{"task":43}}`), 0, sentAt))
	fmt.Println(webhook.Verify("whsec_other", header, body, 0, sentAt))
	// Replayed an hour later: genuine but stale.
	fmt.Println(webhook.Verify(secret, header, body, 0, sentAt.Add(time.Hour)))
	// The same value from a shell, for receivers in other languages:
	//   printf '%s' "1893553445.$body" | openssl dgst -sha256 -hmac whsec_example

	// Output:
	// t=1893553445,v1=5c4fdd95b7498063e752dc00e94114b36be1e7bc31d2db0e5a2ca758ea7105b6
	// <nil>
	// webhook: invalid signature: no signature matches the body under this secret
	// webhook: invalid signature: no signature matches the body under this secret
	// webhook: signature timestamp outside the tolerance: signed 1h0m0s ago, tolerance 5m0s
}

// Middleware verifies every request before the app's handler sees it.
func ExampleMiddleware() {
	const secret = "whsec_example"
	h := webhook.Middleware(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the verified body
		fmt.Printf("handled %s: %s\n", r.Header.Get(webhook.HeaderEvent), body)
	}))

	body := `{"id":"evt_1","type":"task:created","occurred_at":"2030-01-02T03:04:05Z","data":{"task":42}}`
	for _, sig := range []string{
		webhook.Sign(secret, time.Now(), []byte(body)),
		webhook.Sign("whsec_wrong", time.Now(), []byte(body)),
	} {
		req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
		req.Header.Set(webhook.HeaderEvent, "task:created")
		req.Header.Set(webhook.HeaderSignature, sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// handled task:created: {"id":"evt_1","type":"task:created","occurred_at":"2030-01-02T03:04:05Z","data":{"task":42}}
	// 200
	// 401
}
