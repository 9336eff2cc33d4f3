package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hopperq/hopper"
)

// maxFormBytes bounds the body of an action request.
const maxFormBytes = 64 << 10

// errUsage is an action request that makes no sense (a retry of a waiting
// job, an unknown state): 400 with the message.
type errUsage string

func (e errUsage) Error() string { return string(e) }

// action runs one mutation, POSTed to queues/{queue}/actions/{action}, and
// redirects (303) to the page named by the form field "back". Every action
// goes through hopper's public admin API. Form fields: id (job actions),
// state (bulk actions), older (clean: a Go duration, "" = any age),
// delayed (drain: "1" to drain delayed jobs too), force (remove: "1" to
// remove an active job), key (schedule actions).
func (s *server) action(w http.ResponseWriter, r *http.Request) {
	q, err := s.queue(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	f := r.PostForm
	ctx := r.Context()
	id, state, key := f.Get("id"), hopper.State(f.Get("state")), f.Get("key")
	var (
		done string
		n    int64
	)
	switch r.PathValue("action") {
	case "pause":
		done, err = "paused", q.Pause(ctx)
	case "resume":
		done, err = "resumed", q.Resume(ctx)
	case "retry":
		done, err = "retried", retry(ctx, q, id)
	case "promote":
		done, err = "promoted", q.Promote(ctx, id)
	case "remove":
		done, err = "removed", q.Remove(ctx, id, &hopper.RemoveOptions{Force: f.Get("force") == "1"})
	case "retry-all":
		done = "retriedall"
		switch state {
		case hopper.StateDead, hopper.StateFailed:
			n, err = q.RetryAll(ctx, state)
		default:
			err = errUsage("Retry all takes failed or dead jobs.")
		}
	case "promote-all":
		done = "promotedall"
		if state != hopper.StateDelayed && state != hopper.StateFailed {
			err = errUsage("Promote all takes delayed or failed jobs.")
			break
		}
		if state == hopper.StateFailed {
			n, err = q.RetryAll(ctx, state)
		} else {
			n, err = q.PromoteAll(ctx)
		}
	case "clean":
		done = "cleaned"
		var older time.Duration
		if older, err = cleanAge(f.Get("older")); err == nil {
			n, err = q.Clean(ctx, state, older, 0)
		}
	case "drain":
		done = "drained"
		n, err = q.Drain(ctx, f.Get("delayed") == "1")
	case "trigger":
		done = "triggered"
		_, err = q.TriggerSchedule(ctx, key)
	case "schedule-pause":
		done, err = "schedpause", q.PauseSchedule(ctx, key)
	case "schedule-resume":
		done, err = "schedresume", q.ResumeSchedule(ctx, key)
	default:
		err = errNotFound
	}
	if err != nil {
		var u errUsage
		if errors.As(err, &u) {
			s.errorPage(w, r, http.StatusBadRequest, u.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	redirect(w, r, s.back(f, q.Name(), id, state, done, n))
}

// back builds the page to return to after an action, from a fixed set:
// the request never supplies a URL (no open redirect).
func (s *server) back(f url.Values, queue, id string, state hopper.State, done string, n int64) string {
	v := url.Values{"done": {done}}
	if n != 0 {
		v.Set("n", strconv.FormatInt(n, 10))
	}
	switch f.Get("back") {
	case "overview":
		return "?" + v.Encode()
	case "job":
		if done != "removed" {
			return jobPath(queue, id) + "?" + v.Encode()
		}
	case "dlq":
		v.Set("queue", queue)
		return "dlq?" + v.Encode()
	case "schedules":
		return "schedules?" + v.Encode()
	}
	if state != "" {
		v.Set("state", string(state))
	}
	return queuePath(queue) + "?" + v.Encode()
}

// retry runs a failed, dead or delayed job again now: Queue.Retry resets a
// dead job's attempts and lets a failed job skip the rest of its backoff; a
// delayed job is promoted.
func retry(ctx context.Context, q *hopper.Queue, id string) error {
	j, err := q.Job(ctx, id)
	if err != nil {
		return err
	}
	switch j.State {
	case hopper.StateDead, hopper.StateFailed:
		return q.Retry(ctx, id)
	case hopper.StateDelayed:
		return q.Promote(ctx, id)
	}
	return errUsage(fmt.Sprintf("Only failed, delayed or dead jobs can be retried; this one is %s.", j.State))
}

// cleanAge parses the "older than" field of a clean action: "" is any age,
// else a Go duration ("24h", "90m") within 0..MaxCleanAge.
func cleanAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errUsage("\"Older than\" must be a duration such as 30m, 24h or 168h.")
	}
	if d < 0 || d > MaxCleanAge {
		return 0, errUsage("\"Older than\" must be between 0 and 87600h (10 years).")
	}
	return d, nil
}
