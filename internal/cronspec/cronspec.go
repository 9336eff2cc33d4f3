// Package cronspec parses hopper's schedule specs (cron expressions, the
// @descriptors, and the presets "hourly", "daily", "weekly", "monthly") with
// robfig/cron and computes ticks in a time zone. Pure functions.
package cronspec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts 5 fields, an optional leading seconds field, and the
// descriptors (@hourly, @daily, @weekly, @monthly, @yearly, @every <d>).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var presets = map[string]string{
	"hourly": "@hourly", "daily": "@daily", "weekly": "@weekly", "monthly": "@monthly", "yearly": "@yearly",
}

// Schedule computes the ticks of one spec.
type Schedule struct {
	s cron.Schedule
}

// Parse parses spec (a preset, a descriptor or a cron expression) in the
// IANA time zone tz ("" = UTC). Time zones go in tz, not in the spec.
func Parse(spec, tz string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return Schedule{}, errors.New("is empty")
	}
	if p, ok := presets[strings.ToLower(spec)]; ok {
		spec = p
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return Schedule{}, errors.New("sets a time zone inside the spec; use the TimeZone option")
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return Schedule{}, fmt.Errorf("unknown time zone %q: %w", tz, err)
		}
		loc = l
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		// robfig/cron rounds sub-second intervals up to 1s silently; refuse them.
		if dur, err := time.ParseDuration(strings.TrimSpace(d)); err == nil && dur < time.Second {
			return Schedule{}, errors.New("@every needs at least 1s")
		}
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return Schedule{}, err
	}
	if c, ok := s.(*cron.SpecSchedule); ok {
		c.Location = loc
	}
	return Schedule{s: s}, nil
}

// Next returns the first tick strictly after t, or the zero time if there
// is none within five years.
func (s Schedule) Next(t time.Time) time.Time { return s.s.Next(t) }

// Due walks the ticks from first (a tick that is due: first <= now) up to
// now. It returns the latest tick <= now, how many ticks before it were
// passed over (at most limit, counting stops there), and the first tick
// after now.
func (s Schedule) Due(first, now time.Time, limit int) (latest time.Time, passed int, next time.Time) {
	latest = first
	for {
		n := s.s.Next(latest)
		if n.IsZero() || n.After(now) {
			return latest, passed, n
		}
		if passed >= limit {
			// Too many missed ticks to walk: jump to now and keep counting
			// honest by saying "at least limit".
			latest = s.lastBefore(now)
			return latest, passed, s.s.Next(now)
		}
		latest = n
		passed++
	}
}

// lastBefore finds the latest tick <= now by stepping back from now in
// growing windows. Used only after a very long outage.
func (s Schedule) lastBefore(now time.Time) time.Time {
	for back := time.Minute; back < 6*365*24*time.Hour; back *= 2 {
		t := s.s.Next(now.Add(-back))
		if t.IsZero() || t.After(now) {
			continue
		}
		for {
			n := s.s.Next(t)
			if n.IsZero() || n.After(now) {
				return t
			}
			t = n
		}
	}
	return now
}
