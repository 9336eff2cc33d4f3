//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/stretchr/testify/require"
)

// outcome is what the checker needs of the final state.
type outcome struct {
	added  []string               // IDs whose Add returned nil
	starts []startLine            // attempts started
	ends   []historyLine          // attempts ended (a killed attempt has none)
	finals map[string]*hopper.Job // final state per added ID; nil = not found
	counts hopper.Counts
	faults map[int]time.Time // worker PID -> when a fault (kill, stop, term) hit it
}

// check returns every violation of I1–I5.
func check(o outcome) []string {
	var bad []string
	unique := map[string]bool{}
	for _, id := range o.added {
		unique[id] = true
	}
	startsBy := map[string]int{}
	faulted := map[string]int{} // runs of the job in a process a fault hit while it ran
	for _, s := range o.starts {
		startsBy[s.Job]++
		if at, ok := o.faults[s.PID]; ok && !at.Before(s.Started) {
			faulted[s.Job]++
		}
	}
	completions := map[string]int{}
	for _, e := range o.ends {
		if e.State == string(hopper.StateCompleted) && e.Recorded {
			completions[e.Job]++
		}
	}
	ids := make([]string, 0, len(unique))
	for id := range unique {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		j := o.finals[id]
		switch {
		case j == nil:
			bad = append(bad, fmt.Sprintf("I1: job %s was added but is lost", id))
			continue
		case j.State != hopper.StateCompleted && j.State != hopper.StateDead:
			bad = append(bad, fmt.Sprintf("I1: job %s is %s at quiescence, not terminal", id, j.State))
		}
		if completions[id] > 1 {
			bad = append(bad, fmt.Sprintf("I2: job %s completed %d times", id, completions[id]))
		}
		if j.State == hopper.StateCompleted && completions[id] != 1 {
			bad = append(bad, fmt.Sprintf("I2: job %s is completed but %d recorded completions are in the history", id, completions[id]))
		}
		// Every run beyond the first needs a cause: a fault that hit a run of
		// it, or a failed attempt that was retried.
		retries := max(j.AttemptsMade-1, 0)
		if startsBy[id] > 1+faulted[id]+retries {
			bad = append(bad, fmt.Sprintf("I3: job %s ran %d times with %d faulted runs and %d retries", id, startsBy[id], faulted[id], retries))
		}
	}
	if o.counts.Active != 0 {
		bad = append(bad, fmt.Sprintf("I4: %d jobs active at quiescence", o.counts.Active))
	}
	c := o.counts
	if total := c.Waiting + c.Active + c.Delayed + c.Failed + c.Completed + c.Dead; total != int64(len(unique)) {
		bad = append(bad, fmt.Sprintf("I5: states add up to %d jobs, %d were added", total, len(unique)))
	}
	return bad
}

// collect reads the final state of the added jobs and the queue's counts.
func collect(t *testing.T, q *hopper.Queue, added []string, history string, faults map[int]time.Time) outcome {
	t.Helper()
	o := outcome{added: added, finals: map[string]*hopper.Job{}, faults: faults}
	o.starts, o.ends = readHistory(t, history)
	ctx := context.Background()
	for _, id := range added {
		j, err := q.Job(ctx, id)
		if err == nil {
			o.finals[id] = j
		} else {
			require.ErrorIs(t, err, hopper.ErrJobNotFound)
		}
	}
	var err error
	o.counts, err = q.Counts(ctx)
	require.NoError(t, err)
	return o
}

// The checker catches what it must: a lost job, a double completion, an
// unexplained re-run, an active job at quiescence, counts that do not add up.
func TestCheckerCatchesViolations(t *testing.T) {
	now := time.Now()
	done := &hopper.Job{ID: "a", State: hopper.StateCompleted, AttemptsMade: 1}
	good := outcome{
		added:  []string{"a"},
		starts: []startLine{{Job: "a", Started: now}},
		ends:   []historyLine{{Job: "a", State: "completed", Recorded: true}},
		finals: map[string]*hopper.Job{"a": done},
		counts: hopper.Counts{Completed: 1},
	}
	require.Empty(t, check(good))

	lost := good
	lost.added = []string{"a", "b"}
	lost.counts = hopper.Counts{Completed: 1}
	require.Contains(t, fmt.Sprint(check(lost)), "I1: job b was added but is lost")

	double := good
	double.starts = []startLine{{Job: "a"}, {Job: "a"}}
	double.ends = []historyLine{{Job: "a", State: "completed", Recorded: true}, {Job: "a", State: "completed", Recorded: true}}
	v := fmt.Sprint(check(double))
	require.Contains(t, v, "I2: job a completed 2 times")
	require.Contains(t, v, "I3: job a ran 2 times with 0 faulted runs and 0 retries")

	// A zombie's late completion that was refused is fine, and the fault
	// that froze it explains the re-run; a fault after the run does not.
	zombie := double
	zombie.starts = []startLine{{Job: "a", PID: 1, Started: now}, {Job: "a", PID: 2, Started: now.Add(time.Second)}}
	zombie.ends = []historyLine{{Job: "a", State: "completed", Recorded: false}, {Job: "a", State: "completed", Recorded: true}}
	zombie.faults = map[int]time.Time{1: now.Add(time.Millisecond)}
	require.Empty(t, check(zombie))
	zombie.faults = map[int]time.Time{1: now.Add(-time.Second)}
	require.Contains(t, fmt.Sprint(check(zombie)), "I3: job a ran 2 times with 0 faulted runs")

	stuck := good
	stuck.finals = map[string]*hopper.Job{"a": {ID: "a", State: hopper.StateActive}}
	stuck.ends = nil
	stuck.counts = hopper.Counts{Active: 1}
	v = fmt.Sprint(check(stuck))
	require.Contains(t, v, "I1: job a is active at quiescence")
	require.Contains(t, v, "I4: 1 jobs active")

	miscount := good
	miscount.counts = hopper.Counts{Completed: 2}
	require.Contains(t, fmt.Sprint(check(miscount)), "I5: states add up to 2 jobs, 1 were added")
}
