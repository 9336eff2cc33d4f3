package hopper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// eventLog collects the events of a follower by job.
type eventLog struct {
	mu    sync.Mutex
	byJob map[string][]Event
	all   []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byJob == nil {
		l.byJob = map[string][]Event{}
	}
	l.byJob[ev.JobID] = append(l.byJob[ev.JobID], ev)
	l.all = append(l.all, ev)
}

func (l *eventLog) types(id string) []EventType {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EventType
	for _, ev := range l.byJob[id] {
		out = append(out, ev.Type)
	}
	return out
}

func (l *eventLog) last(id string) Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.byJob[id]
	if len(evs) == 0 {
		return Event{}
	}
	return evs[len(evs)-1]
}

// follow runs q.Events(from) in the background until the test ends.
func follow(t *testing.T, q *Queue, from string) *eventLog {
	t.Helper()
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var last error
		for ev, err := range q.Events(ctx, from) {
			if err != nil {
				last = err
				break
			}
			l.add(ev)
		}
		done <- last
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled, "the follower ends with ctx's error")
		case <-time.After(5 * time.Second):
			t.Error("the event follower did not stop")
		}
	})
	return l
}

func TestEventsOfAJobLife(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("events", nil)
		evs := follow(t, q, "0") // from the start: nothing is missed whatever the timing
		var calls sync.Map
		h.worker("events", HandlerFunc(func(ctx context.Context, j *Job) error {
			n, _ := calls.LoadOrStore(j.ID, new(int))
			*n.(*int)++
			switch j.Name {
			case "flaky":
				if err := j.UpdateProgress(ctx, 50); err != nil {
					return err
				}
				if *n.(*int) == 1 {
					return errors.New("first try fails")
				}
				return nil
			case "doomed":
				return Permanent(errors.New("bad input"))
			case "snooze":
				if *n.(*int) == 1 {
					return RetryAfter(10*time.Millisecond, errors.New("not yet"))
				}
			}
			return nil
		}), nil)

		_, err := q.Add(ctx, "flaky", nil, &JobOptions{ID: "flaky", Attempts: 3, Backoff: Fixed(10 * time.Millisecond)})
		require.NoError(t, err)
		_, err = q.Add(ctx, "doomed", nil, &JobOptions{ID: "doomed"})
		require.NoError(t, err)
		_, err = q.Add(ctx, "snooze", nil, &JobOptions{ID: "snooze"})
		require.NoError(t, err)
		_, err = q.Add(ctx, "later", nil, &JobOptions{ID: "later", Delay: 50 * time.Millisecond})
		require.NoError(t, err)
		_, err = q.Add(ctx, "gone", nil, &JobOptions{ID: "gone", Delay: time.Hour})
		require.NoError(t, err)
		require.NoError(t, q.Remove(ctx, "gone", nil))

		want := map[string][]EventType{
			"flaky":  {EventAdded, EventActive, EventProgress, EventFailed, EventRetrying, EventActive, EventProgress, EventCompleted},
			"doomed": {EventAdded, EventActive, EventDead},
			"snooze": {EventAdded, EventActive, EventDelayed, EventWaiting, EventActive, EventCompleted},
			"later":  {EventAdded, EventWaiting, EventActive, EventCompleted},
			"gone":   {EventAdded, EventRemoved},
		}
		waitFor(t, 10*time.Second, "every job's last event", func() bool {
			for id, w := range want {
				if evs.last(id).Type != w[len(w)-1] {
					return false
				}
			}
			return true
		})
		for id, w := range want {
			require.Equal(t, w, evs.types(id), "events of %s in order", id)
		}
		evs.mu.Lock()
		defer evs.mu.Unlock()
		f := evs.byJob["flaky"]
		require.Equal(t, 1, f[1].Attempt)
		require.Equal(t, 2, f[5].Attempt)
		require.JSONEq(t, "50", string(f[2].Progress))
		require.Equal(t, "first try fails", f[3].Error)
		d := evs.byJob["doomed"][2]
		require.Equal(t, "bad input", d.Error)
		require.NotEmpty(t, d.Reason)
		require.Contains(t, evs.byJob["snooze"][2].Error, "not yet")
		for i := 1; i < len(evs.all); i++ {
			require.False(t, evs.all[i].Time.Before(evs.all[i-1].Time), "events come in stream order")
		}
		require.WithinDuration(t, time.Now(), f[0].Time, time.Minute)
	})
}

func TestEventsBatchEntryAndPaging(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("evpage", nil)
		jobs, err := q.AddBulk(ctx, []NewJob{{Name: "a"}, {Name: "b"}, {Name: "c"}})
		require.NoError(t, err)
		_, err = q.Add(ctx, "d", nil, &JobOptions{ID: "d"})
		require.NoError(t, err)

		evs, err := q.ReadEvents(ctx, "", 1)
		require.NoError(t, err)
		require.Len(t, evs, 3, "one stream entry carries the bulk add's three events")
		for i, ev := range evs {
			require.Equal(t, EventAdded, ev.Type)
			require.Equal(t, jobs[i].ID, ev.JobID)
			require.Equal(t, evs[0].Cursor, ev.Cursor)
		}
		rest, err := q.ReadEvents(ctx, evs[2].Cursor, 100)
		require.NoError(t, err)
		require.Len(t, rest, 1)
		require.Equal(t, "d", rest[0].JobID)
		none, err := q.ReadEvents(ctx, rest[0].Cursor, 100)
		require.NoError(t, err)
		require.Empty(t, none)

		for _, bad := range []string{"x", "1-", "-1", "1-2-3", "$"} {
			_, err := q.ReadEvents(ctx, bad, 10)
			require.ErrorIs(t, err, ErrInvalid, bad)
		}
	})
}

func TestEventsMaxLenAndOff(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("evoff", nil)
		n, err := q.EventsMaxLen(ctx)
		require.NoError(t, err)
		require.EqualValues(t, DefaultEventsMaxLen, n)

		require.NoError(t, q.SetEventsMaxLen(ctx, 0))
		n, err = q.EventsMaxLen(ctx)
		require.NoError(t, err)
		require.Zero(t, n)
		_, err = q.Add(ctx, "x", nil, nil)
		require.NoError(t, err)
		evs, err := q.ReadEvents(ctx, "", 100)
		require.NoError(t, err)
		require.Empty(t, evs, "events off: nothing recorded")
		exists, err := h.client.Exists(ctx, q.st.Keys().Key(keys.Events)).Result()
		require.NoError(t, err)
		require.Zero(t, exists)

		require.NoError(t, q.SetEventsMaxLen(ctx, 100))
		for range 30 {
			_, err := q.AddBulk(ctx, []NewJob{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e"}})
			require.NoError(t, err)
		}
		require.NoError(t, q.SetEventsMaxLen(ctx, 10))
		entries, err := h.client.XLen(ctx, q.st.Keys().Key(keys.Events)).Result()
		require.NoError(t, err)
		require.LessOrEqual(t, entries, int64(30), "the stream is trimmed to about its cap")
		require.GreaterOrEqual(t, entries, int64(10))

		require.ErrorIs(t, q.SetEventsMaxLen(ctx, -1), ErrInvalid)
	})
}

func TestEventsStalled(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("evstall", nil)
		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "s"})
		require.NoError(t, err)
		// A worker that claims the job and dies: a 100 ms lease nobody renews.
		r, err := q.st.Fetch(ctx, 0, 1, 100)
		require.NoError(t, err)
		require.Len(t, r.Jobs, 1)
		h.worker("evstall", newRecorder(nil), nil)
		j := waitState(t, q, "s", StateCompleted, 10*time.Second)
		require.Equal(t, 1, j.Stalls)
		evs, err := q.ReadEvents(ctx, "", 100)
		require.NoError(t, err)
		var types []EventType
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		require.Equal(t, []EventType{EventAdded, EventActive, EventStalled, EventActive, EventCompleted}, types)
	})
}

func TestWait(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("wait", nil)
		xreads := new(atomic.Int64)
		h.client.AddHook(xreadHook{xreads})
		release := make(chan struct{})
		releaseQuick := make(chan struct{})
		h.worker("wait", HandlerFunc(func(ctx context.Context, j *Job) error {
			gate := map[string]chan struct{}{"slow": release, "quick": releaseQuick}[j.Name]
			if gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if j.Name == "bad" {
				return Permanent(errors.New("cannot"))
			}
			j.SetResult([]byte("ok:" + j.ID))
			return nil
		}), nil)

		// Completed while Wait waits.
		_, err := q.Add(ctx, "slow", nil, &JobOptions{ID: "w1"})
		require.NoError(t, err)
		got := make(chan *Job, 1)
		go func() {
			j, err := q.Wait(ctx, "w1")
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			got <- j
		}()
		waitState(t, q, "w1", StateActive, 5*time.Second)
		close(release)
		select {
		case j := <-got:
			require.Equal(t, StateCompleted, j.State)
			require.Equal(t, "ok:w1", string(j.Result))
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return after the job completed")
		}

		// Already completed: returns at once.
		j, err := q.Wait(ctx, "w1")
		require.NoError(t, err)
		require.Equal(t, "ok:w1", string(j.Result))

		// Dead.
		_, err = q.Add(ctx, "bad", nil, &JobOptions{ID: "w2"})
		require.NoError(t, err)
		j, err = q.Wait(ctx, "w2")
		require.ErrorIs(t, err, ErrJobDead)
		var dead *DeadJobError
		require.ErrorAs(t, err, &dead)
		require.Equal(t, "w2", dead.Job.ID)
		require.Equal(t, StateDead, j.State)
		require.Contains(t, err.Error(), "cannot")

		// Completed and deleted at once by its retention.
		_, err = q.Add(ctx, "quick", nil, &JobOptions{ID: "w3", KeepCompleted: &Retention{}})
		require.NoError(t, err)
		errc := waitAsync(t, q, xreads, "w3")
		close(releaseQuick)
		select {
		case err := <-errc:
			require.NoError(t, err, "the completed event counts though the job is gone")
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not return")
		}

		// Unknown, removed while waiting, cancelled.
		_, err = q.Wait(ctx, "nope")
		require.ErrorIs(t, err, ErrJobNotFound)
		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "w4", Delay: time.Hour})
		require.NoError(t, err)
		errc = waitAsync(t, q, xreads, "w4")
		require.NoError(t, q.Remove(ctx, "w4", nil))
		select {
		case err := <-errc:
			require.ErrorIs(t, err, ErrJobNotFound)
		case <-time.After(5 * time.Second):
			t.Fatal("Wait did not see the removal")
		}
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "w5", Delay: time.Hour})
		require.NoError(t, err)
		_, err = q.Wait(cctx, "w5")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		_, err = q.Wait(ctx, "bad id")
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestWaitWithEventsOff(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("waitoff", nil)
		q.waitRecheck = 100 * time.Millisecond
		require.NoError(t, q.SetEventsMaxLen(ctx, 0))
		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "j", Delay: 300 * time.Millisecond})
		require.NoError(t, err)
		h.worker("waitoff", newRecorder(nil), nil)
		j, err := q.Wait(ctx, "j")
		require.NoError(t, err, "Wait falls back to re-reading the job")
		require.Equal(t, StateCompleted, j.State)
	})
}

func TestJobLog(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("logs", nil)
		lost := make(chan error, 1)
		h.worker("logs", HandlerFunc(func(ctx context.Context, j *Job) error {
			switch j.ID {
			case "two":
				if err := j.Log(ctx, fmt.Sprintf("attempt %d starts", j.AttemptsMade+1)); err != nil {
					return err
				}
				if j.AttemptsMade == 0 {
					if err := j.Log(ctx, "line\nwith <b>newline</b>"); err != nil {
						return err
					}
					return errors.New("again")
				}
			case "many":
				for i := range MaxLogEntries + 5 {
					if err := j.Log(ctx, fmt.Sprint("entry ", i)); err != nil {
						return err
					}
				}
				return j.Log(ctx, strings.Repeat("é", MaxLogMessageBytes))
			case "lost":
				require.NoError(t, q.Remove(ctx, "lost", &RemoveOptions{Force: true}))
				lost <- j.Log(ctx, "too late")
			}
			return nil
		}), nil)

		_, err := q.Add(ctx, "x", nil, &JobOptions{ID: "two", Attempts: 2, Backoff: Fixed(time.Millisecond)})
		require.NoError(t, err)
		j := waitState(t, q, "two", StateCompleted, 10*time.Second)
		require.Len(t, j.Logs, 3)
		require.Equal(t, "attempt 1 starts", j.Logs[0].Message)
		require.Equal(t, 1, j.Logs[0].Attempt)
		require.Equal(t, "line\nwith <b>newline</b>", j.Logs[1].Message)
		require.Equal(t, "attempt 2 starts", j.Logs[2].Message)
		require.Equal(t, 2, j.Logs[2].Attempt)
		require.WithinDuration(t, time.Now(), j.Logs[2].Time, time.Minute)

		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "many"})
		require.NoError(t, err)
		j = waitState(t, q, "many", StateCompleted, 10*time.Second)
		require.Len(t, j.Logs, MaxLogEntries, "bounded per job")
		require.Equal(t, "entry 6", j.Logs[0].Message, "the oldest entries go first")
		long := j.Logs[MaxLogEntries-1].Message
		require.LessOrEqual(t, len(long), MaxLogMessageBytes)
		require.Greater(t, len(long), MaxLogMessageBytes-4)
		require.True(t, strings.HasPrefix(long, "éé"))

		list, err := q.Jobs(ctx, StateCompleted, 0, 10)
		require.NoError(t, err)
		for _, lj := range list {
			require.Empty(t, lj.Logs, "lists leave logs out")
		}

		_, err = q.Add(ctx, "x", nil, &JobOptions{ID: "lost"})
		require.NoError(t, err)
		select {
		case err := <-lost:
			require.ErrorIs(t, err, ErrLeaseLost)
		case <-time.After(10 * time.Second):
			t.Fatal("the handler did not run")
		}

		require.ErrorIs(t, j.Log(ctx, "outside a handler"), ErrInvalid)
	})
}

// xreadHook counts XREAD commands sent through a client: Wait issues its
// first only after it checked the job, so a count above n proves it is
// blocked in Redis.
type xreadHook struct{ n *atomic.Int64 }

func (xreadHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h xreadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xread" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (xreadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// waitAsync starts q.Wait(id) and returns once Wait is blocked reading
// events (past its first look at the job).
func waitAsync(t *testing.T, q *Queue, xreads *atomic.Int64, id string) chan error {
	t.Helper()
	before := xreads.Load()
	errc := make(chan error, 1)
	go func() { _, err := q.Wait(context.Background(), id); errc <- err }()
	waitFor(t, 5*time.Second, "Wait blocks on the event stream", func() bool { return xreads.Load() > before })
	return errc
}

func TestJobEvents(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		q := h.queue("jobevents", nil)
		_, err := q.AddBulk(ctx, []NewJob{{Name: "a", Options: &JobOptions{ID: "a"}}, {Name: "b", Options: &JobOptions{ID: "b"}}})
		require.NoError(t, err)
		require.NoError(t, q.Remove(ctx, "b", nil))
		h.worker("jobevents", newRecorder(nil), nil)
		waitState(t, q, "a", StateCompleted, 5*time.Second)
		evs, err := q.JobEvents(ctx, "a")
		require.NoError(t, err)
		var types []EventType
		for _, ev := range evs {
			require.Equal(t, "a", ev.JobID)
			types = append(types, ev.Type)
		}
		require.Equal(t, []EventType{EventAdded, EventActive, EventCompleted}, types)
		evs, err = q.JobEvents(ctx, "b")
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, EventRemoved, evs[1].Type)
		evs, err = q.JobEvents(ctx, "nope")
		require.NoError(t, err)
		require.Empty(t, evs)
		_, err = q.JobEvents(ctx, "bad id")
		require.ErrorIs(t, err, ErrInvalid)
	})
}
