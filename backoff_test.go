package hopper

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	cases := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{"zero value is the default", Backoff{}, 1, time.Second},
		{"default grows", DefaultBackoff(), 4, 8 * time.Second},
		{"default capped", DefaultBackoff(), 13, time.Hour},
		{"exp first", Exponential(2 * time.Second), 1, 2 * time.Second},
		{"exp second", Exponential(2 * time.Second), 2, 4 * time.Second},
		{"exp factor 3", Exponential(time.Second).WithFactor(3), 3, 9 * time.Second},
		{"exp factor 1 is fixed", Exponential(time.Second).WithFactor(1), 50, time.Second},
		{"exp cap", Exponential(time.Second).WithMax(5 * time.Second), 10, 5 * time.Second},
		{"exp huge attempt no overflow", Exponential(time.Second), math.MaxInt32, time.Hour},
		{"exp huge base capped", Exponential(time.Duration(math.MaxInt64)).WithMax(time.Duration(math.MaxInt64)), 3, time.Duration(math.MaxInt64)},
		{"attempt 0 treated as 1", Exponential(time.Second), 0, time.Second},
		{"negative attempt treated as 1", Exponential(time.Second), -5, time.Second},
		{"fixed", Fixed(5 * time.Second), 1, 5 * time.Second},
		{"fixed later", Fixed(5 * time.Second), 20, 5 * time.Second},
		{"fixed zero", Fixed(0), 3, 0},
		{"custom has no delay here", Custom("mine"), 3, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.b.Delay(now, c.attempt))
			require.Equal(t, now.Add(c.want), c.b.Next(now, c.attempt))
		})
	}
}

func TestBackoffJitter(t *testing.T) {
	t.Parallel()
	b := Exponential(10 * time.Second).WithJitter(0.5)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[time.Duration]bool{}
	for i := range 200 {
		now := base.Add(time.Duration(i) * time.Millisecond)
		d := b.Delay(now, 1)
		require.GreaterOrEqual(t, d, 5*time.Second)
		require.LessOrEqual(t, d, 15*time.Second)
		require.Equal(t, d, b.Delay(now, 1), "pure: same inputs, same delay")
		seen[d] = true
	}
	require.Greater(t, len(seen), 150, "jitter spreads delays")
	// Jitter never pushes an exponential delay past its cap.
	capped := Exponential(time.Second).WithMax(2 * time.Second).WithJitter(1)
	for i := range 100 {
		require.LessOrEqual(t, capped.Delay(base.Add(time.Duration(i)), 5), 2*time.Second)
	}
}

func TestBackoffWireRoundTrip(t *testing.T) {
	t.Parallel()
	for _, b := range []Backoff{
		Exponential(1500 * time.Millisecond).WithFactor(1.5).WithMax(time.Minute).WithJitter(0.25),
		Fixed(3 * time.Second).WithJitter(0.1),
		Custom("http-429"),
	} {
		require.Equal(t, b, backoffFromWire(b.wire()))
	}
	require.Equal(t, DefaultBackoff(), backoffFromWire(Backoff{}.wire()))
}

func TestBackoffValidate(t *testing.T) {
	t.Parallel()
	for _, b := range []Backoff{
		Exponential(-time.Second), Exponential(time.Second).WithFactor(0.9),
		Exponential(time.Second).WithFactor(math.Inf(1)), Exponential(time.Second).WithFactor(math.NaN()),
		Exponential(time.Second).WithMax(-1), Fixed(time.Second).WithJitter(-0.1),
		Fixed(time.Second).WithJitter(1.1), Custom(""),
	} {
		require.ErrorIs(t, b.validate("b"), ErrInvalid, "%+v", b)
	}
	for _, b := range []Backoff{{}, DefaultBackoff(), Fixed(0), Custom("x"), Exponential(0)} {
		require.NoError(t, b.validate("b"))
	}
}
