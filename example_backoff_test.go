package hopper_test

import (
	"fmt"
	"time"

	"github.com/hopperq/hopper"
)

// Exponential doubles the wait after each failed attempt, up to a cap
// (DefaultBackoffMax, one hour, unless WithMax says otherwise). Backoffs are
// pure values: Delay takes the time explicitly, so the same inputs always
// give the same delay.
func ExampleExponential() {
	b := hopper.Exponential(time.Second)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Printf("after attempt %d: wait %s\n", attempt, b.Delay(now, attempt))
	}
	// Output:
	// after attempt 1: wait 1s
	// after attempt 2: wait 2s
	// after attempt 3: wait 4s
	// after attempt 4: wait 8s
	// after attempt 5: wait 16s
}

// The With methods return adjusted copies: here the delay triples after
// each failure and never exceeds 30 seconds.
func ExampleBackoff_Delay() {
	b := hopper.Exponential(2 * time.Second).WithFactor(3).WithMax(30 * time.Second)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Printf("after attempt %d: wait %s\n", attempt, b.Delay(now, attempt))
	}
	// Output:
	// after attempt 1: wait 2s
	// after attempt 2: wait 6s
	// after attempt 3: wait 18s
	// after attempt 4: wait 30s
	// after attempt 5: wait 30s
}

// Fixed waits the same time after every failure. The zero Backoff, and a
// job that sets none, uses DefaultBackoff: exponential from one second.
func ExampleFixed() {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	fixed := hopper.Fixed(500 * time.Millisecond)
	def := hopper.DefaultBackoff()
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Printf("attempt %d: fixed %s, default %s\n", attempt, fixed.Delay(now, attempt), def.Delay(now, attempt))
	}
	// Output:
	// attempt 1: fixed 500ms, default 1s
	// attempt 2: fixed 500ms, default 2s
	// attempt 3: fixed 500ms, default 4s
	// attempt 4: fixed 500ms, default 8s
	// attempt 5: fixed 500ms, default 16s
}
