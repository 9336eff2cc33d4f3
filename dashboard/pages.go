package dashboard

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hopperq/hopper"
)

// states lists the job states in the order the pages show them.
var states = []hopper.State{hopper.StateWaiting, hopper.StateActive, hopper.StateDelayed,
	hopper.StateFailed, hopper.StateCompleted, hopper.StateDead}

// readConcurrency bounds the queues read at once for one page.
const readConcurrency = 8

// intParam reads query parameter name as an int clamped to lo..hi; a
// missing or malformed value is def.
func intParam(r *http.Request, name string, def, lo, hi int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil {
		return def
	}
	return min(max(n, lo), hi)
}

// forEachQueue runs fn for every name with bounded concurrency and returns
// the first error.
func forEachQueue(names []string, fn func(i int, name string) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, readConcurrency)
	)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i, name); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func (s *server) handle(name string) *hopper.Queue {
	// Names come from the registry or the validated fixed list.
	q, _ := hopper.NewQueue(s.client, name, &hopper.QueueConfig{Prefix: s.cfg.Prefix, Logger: s.cfg.Logger})
	return q
}

// ---- overview ----

// queueRow is one queue on the overview.
type queueRow struct {
	Name          string
	Counts        hopper.Counts
	OldestWaiting time.Duration
	Workers       int
	Processed     int64 // completions within the window
	Failed        int64 // failed attempts within the window
	SparkDone     string
	SparkFail     string
}

type overviewData struct {
	Queues  []queueRow
	Minutes int
	Windows []int
	Total   hopper.Counts
	States  []hopper.State
}

// sparkW and sparkH are the size of a sparkline's viewBox.
const sparkW, sparkH = 120, 28

// spark turns per-minute counts into the points of two SVG polylines
// (completed, failed) on a shared scale, and their totals.
func spark(ms []hopper.MinuteStats) (done, fail string, processed, failed int64) {
	var peak int64 = 1
	for _, m := range ms {
		peak = max(peak, m.Completed, m.Failed)
		processed += m.Completed
		failed += m.Failed
	}
	pts := func(v func(hopper.MinuteStats) int64) string {
		var b strings.Builder
		for i, m := range ms {
			x := 0.0
			if len(ms) > 1 {
				x = float64(i) * sparkW / float64(len(ms)-1)
			}
			y := float64(sparkH-1) - float64(v(m))*float64(sparkH-2)/float64(peak)
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		}
		return b.String()
	}
	return pts(func(m hopper.MinuteStats) int64 { return m.Completed }),
		pts(func(m hopper.MinuteStats) int64 { return m.Failed }), processed, failed
}

// overviewRows reads the stats of every queue shown.
func (s *server) overviewRows(ctx context.Context, minutes int) ([]queueRow, error) {
	names, err := s.queueNames(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]queueRow, len(names))
	err = forEachQueue(names, func(i int, name string) error {
		st, err := s.handle(name).Stats(ctx)
		if err != nil {
			return err
		}
		ms := st.Minutes
		if len(ms) > minutes {
			ms = ms[len(ms)-minutes:]
		}
		row := queueRow{Name: name, Counts: st.Counts, OldestWaiting: st.OldestWaiting, Workers: len(st.Workers)}
		row.SparkDone, row.SparkFail, row.Processed, row.Failed = spark(ms)
		rows[i] = row
		return nil
	})
	return rows, err
}

// total sums the counts of all queues. ("*" is never a queue name, so it
// keys the totals in the live updates.)
func total(rows []queueRow) hopper.Counts {
	var t hopper.Counts
	for _, q := range rows {
		c := q.Counts
		t.Waiting += c.Waiting
		t.Active += c.Active
		t.Delayed += c.Delayed
		t.Failed += c.Failed
		t.Completed += c.Completed
		t.Dead += c.Dead
	}
	return t
}

func (s *server) overview(w http.ResponseWriter, r *http.Request) {
	minutes := intParam(r, "minutes", MaxMinutes, MinMinutes, MaxMinutes)
	rows, err := s.overviewRows(r.Context(), minutes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := overviewData{Queues: rows, Minutes: minutes, Windows: []int{5, 15, 60}, States: states, Total: total(rows)}
	s.render(w, r, http.StatusOK, "overview",
		s.view(r, "Queues", "overview", "api/overview?minutes="+strconv.Itoa(minutes), d))
}

// live is the body of the JSON endpoints the pages poll: text to put into
// the elements marked data-live="key", points for data-spark="key", and
// flags that show the elements marked data-flag="key".
type live struct {
	Live  map[string]string `json:"live"`
	Spark map[string]string `json:"spark,omitempty"`
	Flags map[string]bool   `json:"flags"`
	State string            `json:"state,omitempty"`
}

func countsLive(l *live, queue string, c hopper.Counts) {
	for _, st := range states {
		l.Live[queue+"|"+string(st)] = strconv.FormatInt(count(c, st), 10)
	}
	l.Flags[queue+"|paused"] = c.Paused
}

func (s *server) apiOverview(w http.ResponseWriter, r *http.Request) {
	minutes := intParam(r, "minutes", MaxMinutes, MinMinutes, MaxMinutes)
	rows, err := s.overviewRows(r.Context(), minutes)
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	l := &live{Live: map[string]string{}, Spark: map[string]string{}, Flags: map[string]bool{}}
	for _, q := range rows {
		countsLive(l, q.Name, q.Counts)
		l.Live[q.Name+"|oldest"] = oldest(q.OldestWaiting)
		l.Live[q.Name+"|workers"] = strconv.Itoa(q.Workers)
		l.Live[q.Name+"|processed"] = strconv.FormatInt(q.Processed, 10)
		l.Live[q.Name+"|failedn"] = strconv.FormatInt(q.Failed, 10)
		l.Spark[q.Name+"|done"] = q.SparkDone
		l.Spark[q.Name+"|fail"] = q.SparkFail
	}
	countsLive(l, "*", total(rows))
	writeJSON(w, http.StatusOK, l)
}

func (s *server) failJSON(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := s.status(r, err)
	writeJSON(w, code, map[string]string{"error": msg})
}

// oldest formats the oldest waiting age for the overview.
func oldest(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return dur(d)
}

func count(c hopper.Counts, st hopper.State) int64 {
	switch st {
	case hopper.StateWaiting:
		return c.Waiting
	case hopper.StateActive:
		return c.Active
	case hopper.StateDelayed:
		return c.Delayed
	case hopper.StateFailed:
		return c.Failed
	case hopper.StateCompleted:
		return c.Completed
	case hopper.StateDead:
		return c.Dead
	}
	return 0
}

// ---- queue page ----

type stateTab struct {
	State  hopper.State
	Count  int64
	Active bool
}

// jobRow is one job in a list.
type jobRow struct {
	Job  *hopper.Job
	When time.Time
	Info string
}

// pager is the pagination of a job list.
type pager struct {
	Page, Pages, Size int
	Total             int64
	Prev, Next        string // links relative to the root; "" = none
}

type queueData struct {
	Name      string
	Stats     *hopper.Stats
	State     hopper.State
	Tabs      []stateTab
	Jobs      []jobRow
	WhenLabel string
	InfoLabel string
	Pager     pager
}

// whenLabels and infoLabels head the list columns per state.
var whenLabels = map[hopper.State]string{
	hopper.StateWaiting: "added", hopper.StateActive: "started", hopper.StateDelayed: "due",
	hopper.StateFailed: "retry at", hopper.StateCompleted: "finished", hopper.StateDead: "died",
}

var infoLabels = map[hopper.State]string{
	hopper.StateWaiting: "priority", hopper.StateActive: "progress", hopper.StateDelayed: "last error",
	hopper.StateFailed: "last error", hopper.StateCompleted: "took", hopper.StateDead: "reason",
}

func row(j *hopper.Job) jobRow {
	r := jobRow{Job: j}
	switch j.State {
	case hopper.StateWaiting:
		r.When = j.CreatedAt
		if j.Priority > 0 {
			r.Info = strconv.Itoa(j.Priority)
		}
	case hopper.StateActive:
		r.When = j.StartedAt
		r.Info = string(j.Progress)
	case hopper.StateDelayed, hopper.StateFailed:
		r.When = j.DueAt
		r.Info = j.LastError
	case hopper.StateCompleted:
		r.When = j.FinishedAt
		if !j.StartedAt.IsZero() && !j.FinishedAt.IsZero() {
			r.Info = dur(max(j.FinishedAt.Sub(j.StartedAt), 0))
		}
	case hopper.StateDead:
		r.When = j.FinishedAt
		r.Info = j.DeadReason
		if r.Info == "" {
			r.Info = j.LastError
		}
	}
	return r
}

// paging computes the pager of a list of total items.
func paging(r *http.Request, total int64, size int, link func(page int) string) pager {
	p := pager{Size: size, Total: total}
	p.Pages = int(min((total+int64(size)-1)/int64(size), MaxPage))
	p.Pages = max(p.Pages, 1)
	p.Page = intParam(r, "page", 1, 1, MaxPage)
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return p
}

func (s *server) pageSize(r *http.Request) int {
	return intParam(r, "size", s.cfg.PageSize, 1, MaxPageSize)
}

func (s *server) queuePage(w http.ResponseWriter, r *http.Request) {
	q, err := s.queue(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	state := hopper.State(r.URL.Query().Get("state"))
	if !slices.Contains(states, state) {
		state = hopper.StateWaiting
	}
	st, err := q.Stats(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	size := s.pageSize(r)
	d := queueData{Name: q.Name(), Stats: st, State: state, WhenLabel: whenLabels[state], InfoLabel: infoLabels[state]}
	for _, x := range states {
		d.Tabs = append(d.Tabs, stateTab{State: x, Count: count(st.Counts, x), Active: x == state})
	}
	d.Pager = paging(r, count(st.Counts, state), size, func(page int) string {
		return queuePath(q.Name()) + "?" + url.Values{"state": {string(state)},
			"page": {strconv.Itoa(page)}, "size": {strconv.Itoa(size)}}.Encode()
	})
	jobs, err := q.Jobs(r.Context(), state, (d.Pager.Page-1)*size, size)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, j := range jobs {
		d.Jobs = append(d.Jobs, row(j))
	}
	s.render(w, r, http.StatusOK, "queue", s.view(r, q.Name(), "overview", "api/queues/"+url.PathEscape(q.Name()), d))
}

func (s *server) apiQueue(w http.ResponseWriter, r *http.Request) {
	q, err := s.queue(r)
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	st, err := q.Stats(r.Context())
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	l := &live{Live: map[string]string{}, Flags: map[string]bool{}}
	countsLive(l, q.Name(), st.Counts)
	l.Live[q.Name()+"|oldest"] = oldest(st.OldestWaiting)
	l.Live[q.Name()+"|workers"] = strconv.Itoa(len(st.Workers))
	writeJSON(w, http.StatusOK, l)
}

// ---- job page ----

// shown is a payload or result prepared for display.
type shown struct {
	Text string
	Kind string // "json", "text", "binary" or "" (empty)
	Note string
}

// pretty prepares b for display: indented if it is JSON, as text if it is
// UTF-8, else as a hex dump; cut at MaxPayloadShown. The template escapes
// it, so markup in a payload shows as text.
func pretty(b []byte) shown {
	if len(b) == 0 {
		return shown{Note: "empty"}
	}
	var out shown
	switch {
	case json.Valid(b):
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			out = shown{Text: buf.String(), Kind: "json"}
		} else {
			out = shown{Text: string(b), Kind: "json"}
		}
	case utf8.Valid(b):
		out = shown{Text: string(b), Kind: "text"}
	default:
		n := min(len(b), 4096)
		out = shown{Text: hex.Dump(b[:n]), Kind: "binary",
			Note: fmt.Sprintf("binary, %d bytes", len(b))}
		if n < len(b) {
			out.Note += fmt.Sprintf("; the first %d shown", n)
		}
		return out
	}
	if len(out.Text) > MaxPayloadShown {
		cut := MaxPayloadShown
		for cut > 0 && !utf8.RuneStart(out.Text[cut]) {
			cut--
		}
		out.Text = out.Text[:cut]
		out.Note = fmt.Sprintf("%d bytes; the first %d shown", len(b), cut)
	}
	return out
}

// event is one line of a job's timeline.
type event struct {
	At     time.Time
	What   string
	Future bool
}

// timeline builds a job's timeline from its timestamps. (The full history
// of attempts needs an event log, which hopper does not keep yet.)
func timeline(j *hopper.Job, now time.Time) []event {
	var ev []event
	add := func(t time.Time, what string) {
		if !t.IsZero() {
			ev = append(ev, event{At: t, What: what, Future: t.After(now)})
		}
	}
	add(j.CreatedAt, "added")
	if !j.StartedAt.IsZero() {
		n := j.AttemptsMade
		if j.State == hopper.StateActive {
			n++
		}
		add(j.StartedAt, fmt.Sprintf("attempt %d started", max(n, 1)))
	}
	switch j.State {
	case hopper.StateCompleted:
		add(j.FinishedAt, "completed")
	case hopper.StateDead:
		add(j.FinishedAt, "dead-lettered")
	case hopper.StateActive:
		add(j.DueAt, "lease expires (extended while the worker is alive)")
	case hopper.StateDelayed:
		add(j.DueAt, "due")
	case hopper.StateFailed:
		add(j.DueAt, fmt.Sprintf("attempt %d failed; retry due", j.AttemptsMade))
	}
	slices.SortStableFunc(ev, func(a, b event) int { return a.At.Compare(b.At) })
	return ev
}

// backoffText describes a job's retry delays.
func backoffText(j *hopper.Job, now time.Time) string {
	if n := j.Backoff.Name(); n != "" {
		return "custom (" + n + ", computed by the worker)"
	}
	var parts []string
	for a := 1; a < min(j.MaxAttempts, 6); a++ {
		parts = append(parts, dur(j.Backoff.Delay(now, a)))
	}
	if len(parts) == 0 {
		return "no retries"
	}
	s := strings.Join(parts, ", ")
	if j.MaxAttempts > 6 {
		s += ", …"
	}
	return s
}

type kv struct{ Key, Value string }

type jobData struct {
	Job      *hopper.Job
	Payload  shown
	Result   shown
	Progress shown
	Metadata []kv
	Backoff  string
	Timeline []event
	Duration string
	Events   []hopper.Event // the job's recent events (Queue.JobEvents)
	MaxLogs  int
}

func (s *server) jobPage(w http.ResponseWriter, r *http.Request) {
	q, err := s.queue(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	j, err := q.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	d := jobData{Job: j, Payload: pretty(j.Payload), Result: pretty(j.Result), Progress: pretty(j.Progress),
		Backoff: backoffText(j, now), Timeline: timeline(j, now), MaxLogs: hopper.MaxLogEntries}
	if d.Events, err = q.JobEvents(r.Context(), j.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	for k, v := range j.Metadata {
		d.Metadata = append(d.Metadata, kv{k, v})
	}
	slices.SortFunc(d.Metadata, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	if !j.StartedAt.IsZero() && !j.FinishedAt.IsZero() {
		d.Duration = dur(max(j.FinishedAt.Sub(j.StartedAt), 0))
	}
	v := s.view(r, "Job "+j.ID, "overview", "api/"+jobPath(q.Name(), j.ID), d)
	s.render(w, r, http.StatusOK, "job", v)
}

func (s *server) apiJob(w http.ResponseWriter, r *http.Request) {
	q, err := s.queue(r)
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	j, err := q.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failJSON(w, r, err)
		return
	}
	l := &live{Live: map[string]string{
		"job|attempts": strconv.Itoa(j.AttemptsMade),
		"job|progress": pretty(j.Progress).Text,
	}, Flags: map[string]bool{}, State: string(j.State)}
	writeJSON(w, http.StatusOK, l)
}

// ---- schedules ----

type schedGroup struct {
	Queue     string
	Schedules []*hopper.Schedule
}

func (s *server) schedulesPage(w http.ResponseWriter, r *http.Request) {
	names, err := s.queueNames(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	groups := make([]schedGroup, len(names))
	err = forEachQueue(names, func(i int, name string) error {
		sc, err := s.handle(name).Schedules(r.Context())
		groups[i] = schedGroup{Queue: name, Schedules: sc}
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	groups = slices.DeleteFunc(groups, func(g schedGroup) bool { return len(g.Schedules) == 0 })
	s.render(w, r, http.StatusOK, "schedules", s.view(r, "Schedules", "schedules", "", groups))
}

// ---- dead-letter queue ----

type dlqData struct {
	Queues []stateTab // State unused; Count = dead jobs
	Names  []string
	Queue  string
	Jobs   []*hopper.Job
	Pager  pager
}

func (s *server) dlqPage(w http.ResponseWriter, r *http.Request) {
	names, err := s.queueNames(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	deads := make([]int64, len(names))
	err = forEachQueue(names, func(i int, name string) error {
		n, err := s.handle(name).DeadLetters().Len(r.Context())
		deads[i] = n
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := dlqData{Names: names}
	sel := r.URL.Query().Get("queue")
	for i, name := range names {
		d.Queues = append(d.Queues, stateTab{Count: deads[i]})
		if sel == "" && deads[i] > 0 {
			sel = name
		}
	}
	if sel == "" && len(names) > 0 {
		sel = names[0]
	}
	idx := slices.Index(names, sel)
	if idx < 0 {
		if sel != "" && len(names) > 0 {
			s.fail(w, r, errNotFound)
			return
		}
	} else {
		d.Queue = sel
		d.Queues[idx].Active = true
		size := s.pageSize(r)
		d.Pager = paging(r, deads[idx], size, func(page int) string {
			return "dlq?" + url.Values{"queue": {sel}, "page": {strconv.Itoa(page)}, "size": {strconv.Itoa(size)}}.Encode()
		})
		d.Jobs, err = s.handle(sel).DeadLetters().List(r.Context(), (d.Pager.Page-1)*size, size)
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "dlq", s.view(r, "Dead letters", "dlq", "", d))
}
