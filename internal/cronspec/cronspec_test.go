package cronspec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSeedSpecs(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 2, 10, 17, 0, 0, time.UTC) // a Monday
	for spec, want := range map[string]time.Time{
		"0 0 * * *":    time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC),
		"0 */6 * * *":  time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC),
		"0 9 * * 1":    time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC),
		"*/15 * * * *": time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC),
		"30 * * * * *": time.Date(2026, 3, 2, 10, 17, 30, 0, time.UTC), // seconds field
		"@hourly":      time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC),
		"daily":        time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC),
		"weekly":       time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),
		"monthly":      time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		"@every 90s":   base.Add(90 * time.Second),
	} {
		s, err := Parse(spec, "")
		require.NoError(t, err, spec)
		require.Equal(t, want, s.Next(base), spec)
	}
}

func TestBadSpecs(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"", "nope", "61 * * * *", "* * *", "@every 100ms", "@every -1s", "CRON_TZ=UTC 0 * * * *", "fortnightly"} {
		_, err := Parse(spec, "")
		require.Error(t, err, spec)
	}
	_, err := Parse("@daily", "Mars/Olympus_Mons")
	require.ErrorContains(t, err, "unknown time zone")
}

// 09:00 every day in New York stays 09:00 local across the DST changes.
func TestDST(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	s, err := Parse("0 9 * * *", "America/New_York")
	require.NoError(t, err)
	tick := time.Date(2026, 3, 6, 9, 0, 0, 0, ny)
	var utcHours []int
	for range 5 { // Mar 7 .. Mar 11; DST starts Mar 8 2026
		tick = s.Next(tick)
		require.Equal(t, 9, tick.In(ny).Hour())
		utcHours = append(utcHours, tick.UTC().Hour())
	}
	require.Equal(t, []int{14, 13, 13, 13, 13}, utcHours)
	// 02:30 does not exist on the spring-forward day: the tick is skipped,
	// not doubled.
	s, err = Parse("30 2 * * *", "America/New_York")
	require.NoError(t, err)
	first := s.Next(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	require.Equal(t, 9, first.In(ny).Day(), "no 02:30 on Mar 8")
}

func TestDue(t *testing.T) {
	t.Parallel()
	s, err := Parse("*/15 * * * *", "")
	require.NoError(t, err)
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	latest, passed, next := s.Due(first, first.Add(time.Minute), 100)
	require.Equal(t, first, latest)
	require.Equal(t, 0, passed)
	require.Equal(t, first.Add(15*time.Minute), next)

	latest, passed, next = s.Due(first, first.Add(50*time.Minute), 100)
	require.Equal(t, first.Add(45*time.Minute), latest)
	require.Equal(t, 3, passed)
	require.Equal(t, first.Add(time.Hour), next)

	// A year of missed ticks: bounded walk, still the right latest tick.
	now := first.Add(365*24*time.Hour + 7*time.Minute)
	latest, passed, next = s.Due(first, now, 1000)
	require.Equal(t, 1000, passed)
	require.Equal(t, now.Truncate(15*time.Minute), latest)
	require.Equal(t, now.Truncate(15*time.Minute).Add(15*time.Minute), next)
}
