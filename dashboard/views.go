package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

//go:embed templates/*.html assets/*
var files embed.FS

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"overview", "queue", "job", "schedules", "dlq", "error"}

// views holds the parsed templates and the embedded assets.
type views struct {
	pages   map[string]*template.Template
	assets  fs.FS
	version string // a hash of the assets, appended to their URLs
}

func newViews() (*views, error) {
	funcs := template.FuncMap{
		"when":      when,
		"ago":       ago,
		"dur":       dur,
		"queuePath": queuePath,
		"jobPath":   jobPath,
		"isoTime":   isoTime,
		"short":     short,
		"dict":      dict,
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("hopper dashboard: parse template %s: %w", name, err)
		}
		v.pages[name] = t
	}
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		return nil, err
	}
	v.assets = sub
	h := sha256.New()
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		h.Write(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	v.version = hex.EncodeToString(h.Sum(nil))[:12]
	return v, nil
}

// view is what every page template receives: the layout's fields and the
// page's own Data.
type view struct {
	App      string // Options.Title
	Title    string // the page's title
	Nav      string // the active navigation entry
	Root     string // relative path to the mount root ("./", "../", ...)
	ReadOnly bool
	Refresh  int64  // live-update interval in ms; 0 = off
	Poll     string // JSON endpoint the page polls, relative to Root; "" = none
	Flash    string // the outcome of the last action
	AssetV   string
	Data     any
}

func (s *server) view(r *http.Request, title, nav, poll string, data any) *view {
	v := &view{App: s.cfg.Title, Title: title, Nav: nav, Root: rootOf(r), ReadOnly: s.cfg.ReadOnly,
		Poll: poll, Flash: flash(r), AssetV: s.views.version, Data: data}
	if s.cfg.RefreshInterval > 0 && poll != "" {
		v.Refresh = s.cfg.RefreshInterval.Milliseconds()
	}
	return v
}

// render writes page name with v. It renders into a buffer first, so that a
// template error becomes a clean 500 instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, code int, name string, v *view) {
	var buf bytes.Buffer
	if err := s.views.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.cfg.Logger.Error("hopper dashboard: render "+name, "error", err)
		http.Error(w, "500 internal error (see the server log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// errorPage renders a styled error page with a message meant for users.
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", s.view(r, http.StatusText(code), "", "", struct {
		Code    int
		Message string
	}{code, msg}))
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// asset serves an embedded file of assets/.
func (s *server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(s.views.assets, name)
	if err != nil {
		s.errorPage(w, r, http.StatusNotFound, "There is no such file.")
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		w.Header().Set("Content-Type", http.DetectContentType(b))
	}
	if r.URL.Query().Get("v") == s.views.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(b)
}

// flashes are the messages an action's redirect may ask the next page to
// show (?done=code&n=count). Only these fixed texts are ever shown.
var flashes = map[string]string{
	"paused":      "Queue paused: workers take no new jobs.",
	"resumed":     "Queue resumed.",
	"retried":     "Job sent back to waiting.",
	"promoted":    "Job promoted: it is ready now.",
	"removed":     "Job removed.",
	"retriedall":  "%d job(s) sent back to waiting.",
	"promotedall": "%d job(s) made ready now.",
	"cleaned":     "%d job(s) deleted.",
	"drained":     "%d waiting (or delayed) job(s) deleted.",
	"triggered":   "Schedule triggered: its job was added.",
	"schedpause":  "Schedule paused.",
	"schedresume": "Schedule resumed.",
}

func flash(r *http.Request) string {
	q := r.URL.Query()
	f, ok := flashes[q.Get("done")]
	if !ok {
		return ""
	}
	if strings.Contains(f, "%d") {
		n, _ := strconv.ParseInt(q.Get("n"), 10, 64)
		return fmt.Sprintf(f, max(n, 0))
	}
	return f
}

// when formats a time for a table cell; "—" for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ago says how long ago (or in how long) t is.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	if d < 0 {
		return "in " + dur(-d)
	}
	return dur(d) + " ago"
}

// dur formats a duration compactly with at most two units: "850ms",
// "42s", "3m10s", "5h2m", "3d4h".
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		m, s := d/time.Minute, (d%time.Minute)/time.Second
		return two(int64(m), "m", int64(s), "s")
	case d < 48*time.Hour:
		h, m := d/time.Hour, (d%time.Hour)/time.Minute
		return two(int64(h), "h", int64(m), "m")
	default:
		days, h := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
		return two(int64(days), "d", int64(h), "h")
	}
}

func two(a int64, ua string, b int64, ub string) string {
	s := strconv.FormatInt(a, 10) + ua
	if b > 0 {
		s += strconv.FormatInt(b, 10) + ub
	}
	return s
}

// short cuts s to n runes with an ellipsis, for table cells.
func short(n int, s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// dict builds a map from key, value pairs, to pass several values to a
// sub-template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
