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
	added  []string      // IDs whose Add returned nil
	starts []startLine   // attempts started
	ends   []historyLine // attempts ended (a killed attempt has none)
	// returns are handlers that returned nil, written before the ack: one
	// without a matching end is an attempt whose process died after (or
	// while) acknowledging it, so its completion may have been recorded.
	returns []returnLine
	finals  map[string]*hopper.Job // final state per added ID; nil = not found
	counts  hopper.Counts
	faults  map[int]time.Time // worker PID -> when a fault (kill, stop, term) hit it
	// windows are faults with a duration (the soak's): a run that started
	// within lease before a window's start, or during it, may have been
	// hit by it.
	windows []faultWindow
}

// faultWindow is a fault that hit one worker process (PID) or, with PID 0,
// all of them, from From to To.
type faultWindow struct {
	PID      int
	From, To time.Time
}

// hit reports whether a run of pid that started at started may have been
// interrupted by the window: it started at most slack before the window's
// start (a run lasts less than slack) and no later than its end.
func (w faultWindow) hit(pid int, started time.Time, slack time.Duration) bool {
	return (w.PID == 0 || w.PID == pid) && !started.Before(w.From.Add(-slack)) && !started.After(w.To)
}

// windowSlack bounds a run's length for faultWindow.hit: the lease.
const windowSlack = lease

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
			continue
		}
		for _, w := range o.windows {
			if w.hit(s.PID, s.Started, windowSlack) {
				faulted[s.Job]++
				break
			}
		}
	}
	completions := map[string]int{}
	unknown := map[string]int{} // completions whose write failed and may have landed
	type run struct {
		job string
		pid int
	}
	endedBy := map[run]int{}
	for _, e := range o.ends {
		endedBy[run{e.Job, e.PID}]++
		switch {
		case e.State == string(hopper.StateCompleted) && e.Recorded:
			completions[e.Job]++
		case e.State == string(hopper.StateCompleted) && e.Unknown:
			unknown[e.Job]++
		}
	}
	returnedBy := map[run]int{}
	for _, r := range o.returns {
		returnedBy[run{r.Job, r.PID}]++
	}
	for k, n := range returnedBy {
		if n > endedBy[k] {
			unknown[k.job] += n - endedBy[k] // returned, then the process died before recording the end
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
		if j.State == hopper.StateCompleted && completions[id] != 1 && !(completions[id] == 0 && unknown[id] > 0) {
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
	o.returns = readLines[returnLine](t, history, "returned")
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

	// A fault window explains re-runs of the runs that started shortly
	// before it or during it, on the process it hit (or on all, PID 0).
	windowed := zombie
	windowed.faults = nil
	windowed.windows = []faultWindow{{PID: 1, From: now.Add(time.Second), To: now.Add(2 * time.Second)}}
	require.Empty(t, check(windowed))
	windowed.windows = []faultWindow{{PID: 0, From: now.Add(-time.Second), To: now.Add(-time.Millisecond)}}
	require.Contains(t, fmt.Sprint(check(windowed)), "I3: job a ran 2 times with 0 faulted runs", "a window that ended before the run")
	windowed.windows = []faultWindow{{PID: 3, From: now, To: now.Add(time.Second)}}
	require.Contains(t, fmt.Sprint(check(windowed)), "I3: job a ran 2 times with 0 faulted runs", "a window on another process")
	windowed.windows = []faultWindow{{PID: 1, From: now.Add(windowSlack + time.Millisecond), To: now.Add(time.Hour)}}
	require.Contains(t, fmt.Sprint(check(windowed)), "I3: job a ran 2 times with 0 faulted runs", "a run that started longer than a run lasts before the window")

	// A completion whose write failed may have landed: it explains a
	// completed job with no recorded completion, but not a second one.
	unsure := good
	unsure.ends = []historyLine{{Job: "a", State: "completed", Unknown: true}}
	require.Empty(t, check(unsure))
	unsure.ends = []historyLine{{Job: "a", State: "completed"}}
	require.Contains(t, fmt.Sprint(check(unsure)), "I2: job a is completed but 0 recorded completions")
	// A handler that returned nil in a process that then died without an
	// end line may have had its completion recorded; one with its end line
	// (not recorded) explains nothing.
	unsure.returns = []returnLine{{Job: "a", PID: 7}}
	unsure.ends = nil
	require.Empty(t, check(unsure))
	unsure.ends = []historyLine{{Job: "a", PID: 7, State: "completed"}}
	require.Contains(t, fmt.Sprint(check(unsure)), "I2: job a is completed but 0 recorded completions")

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
