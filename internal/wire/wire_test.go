package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	h := Header{Name: "verify", Created: 1700000000000, Attempts: 3, Timeout: 500,
		Backoff: &Backoff{Type: "fixed", Base: 100}, KeepDead: &Retention{Count: 1}}
	payload := []byte("binary\n\x00payload with a newline")
	b, err := Encode(&h, payload)
	require.NoError(t, err)
	got, p, err := Decode(string(b))
	require.NoError(t, err)
	require.Equal(t, h, got)
	require.Equal(t, payload, p)
}

func TestDefaultsOmitted(t *testing.T) {
	t.Parallel()
	b, err := Encode(&Header{Name: "n", Created: 1}, []byte("{}"))
	require.NoError(t, err)
	require.Equal(t, "{\"name\":\"n\",\"ts\":1}\n{}", string(b))
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "no newline", "{bad json}\n", "{\"ts\":1}\npayload"} {
		_, _, err := Decode(body)
		require.ErrorIs(t, err, ErrMalformed, "%q", body)
	}
}
