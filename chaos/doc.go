// Package chaos is hopper's fault-injection suite. Its tests run only with
// the build tag "chaos" (go test -tags chaos ./chaos/...): they start their
// own redis-server processes on random loopback ports, run workers as
// separate processes (the test binary re-executed in worker mode), inject
// faults (SIGKILL, SIGSTOP, SIGTERM with a short budget), record every
// attempt in a history file, and check the history and the final Redis
// state against hopper's invariants:
//
//	I1 every job whose Add returned nil ends in exactly one terminal state;
//	I2 a job's completion is recorded at most once, by its lease holder;
//	I3 a job runs at most 1 + (its recorded stalls) times;
//	I4 at quiescence no job is active;
//	I5 the per-state counts add up to the jobs added.
//
// TestSoak runs a seeded random mix of the faults for HOPPER_SOAK (a Go
// duration; 3m by default) and logs its seed; HOPPER_SOAK_SEED=<seed>
// replays the same fault sequence (timings still vary).
package chaos
