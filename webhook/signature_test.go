package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/stretchr/testify/require"
)

func TestSignFormat(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	body := []byte(`{"id":"evt_1"}`)
	// The scheme, computed independently: HMAC-SHA256(secret, "<unix>." + body).
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write([]byte("1700000000." + string(body)))
	require.Equal(t, "t=1700000000,v1="+hex.EncodeToString(m.Sum(nil)), Sign("s3cret", at, body))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	body := []byte(`{"id":"evt_1","type":"task:created","data":{"n":1}}`)
	hdr := func(v string) http.Header {
		h := http.Header{}
		if v != "" {
			h.Set(HeaderSignature, v)
		}
		return h
	}
	good := Sign("s3cret", now, body)
	other := Sign("old-secret", now, body)
	_, v1, _ := strings.Cut(good, ",v1=")
	for _, tc := range []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		tol    time.Duration
		now    time.Time
		want   error
	}{
		{"valid", "s3cret", hdr(good), body, 0, now, nil},
		{"valid within tolerance", "s3cret", hdr(good), body, 0, now.Add(4 * time.Minute), nil},
		{"valid, rotation: second v1 matches", "s3cret", hdr(other + ",v1=" + v1), body, 0, now, nil},
		{"valid, unknown scheme ignored", "s3cret", hdr(good + ",v2=abc"), body, 0, now, nil},
		{"tampered body", "s3cret", hdr(good), []byte(`{"id":"evt_1","type":"task:created","data":{"n":2}}`), 0, now, ErrInvalidSignature},
		{"wrong secret", "wrong", hdr(good), body, 0, now, ErrInvalidSignature},
		{"tampered timestamp", "s3cret", hdr("t=1700000001,v1=" + v1), body, 0, now, ErrInvalidSignature},
		{"stale", "s3cret", hdr(good), body, 0, now.Add(6 * time.Minute), ErrStaleTimestamp},
		{"stale, custom tolerance", "s3cret", hdr(good), body, time.Minute, now.Add(2 * time.Minute), ErrStaleTimestamp},
		{"future", "s3cret", hdr(good), body, 0, now.Add(-6 * time.Minute), ErrStaleTimestamp},
		{"stale and wrong: signature first", "wrong", hdr(good), body, 0, now.Add(time.Hour), ErrInvalidSignature},
		{"no header", "s3cret", hdr(""), body, 0, now, ErrMissingSignature},
		{"no v1", "s3cret", hdr("t=1700000000"), body, 0, now, ErrMissingSignature},
		{"no t", "s3cret", hdr("v1=" + v1), body, 0, now, ErrMissingSignature},
		{"malformed", "s3cret", hdr("garbage"), body, 0, now, ErrInvalidSignature},
		{"v1 not hex", "s3cret", hdr("t=1700000000,v1=zz"), body, 0, now, ErrInvalidSignature},
		{"t not a number", "s3cret", hdr("t=soon,v1=" + v1), body, 0, now, ErrInvalidSignature},
		{"empty secret", "", hdr(good), body, 0, now, ErrInvalid},
	} {
		err := Verify(tc.secret, tc.header, tc.body, tc.tol, tc.now)
		if tc.want == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorIs(t, err, tc.want, tc.name)
		require.True(t, strings.HasPrefix(err.Error(), "webhook: "), "%s: %v", tc.name, err)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	var got string
	h := Middleware("s3cret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	body := `{"id":"evt_1"}`
	req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(body))
	req.Header.Set(HeaderSignature, Sign("s3cret", time.Now(), []byte(body)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, body, got, "next reads the verified body")

	got = ""
	req = httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(`{"id":"evt_2"}`))
	req.Header.Set(HeaderSignature, Sign("s3cret", time.Now(), []byte(body)))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, rec.Body.String(), "invalid signature")
	require.Empty(t, got, "next is not called")

	req = httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(strings.Repeat("x", MaxVerifiedBody+1)))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := NewSecret(), NewSecret()
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "whsec_"))
	require.Len(t, a, len("whsec_")+64)
	require.NoError(t, Endpoint{ID: "x", URL: "https://example.com", Secret: a, Events: []string{"*"}}.Validate())
}

func TestValidationErrorMatchesBothSentinels(t *testing.T) {
	t.Parallel()
	err := Endpoint{ID: "x", URL: "https://example.com", Events: []string{"*"}}.Validate()
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorIs(t, err, hopper.ErrInvalid)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, "Endpoint.Secret", ve.Field)
}
