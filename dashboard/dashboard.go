package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// errNotFound answers 404: an unknown queue, page or asset.
var errNotFound = errors.New("not found")

// server is the dashboard handler's state. It is immutable after New.
type server struct {
	cfg    *config
	client redis.UniversalClient
	views  *views
}

// New returns the dashboard as an http.Handler. Mount it under any path,
// stripping that path first, e.g.
//
//	mux.Handle("/admin/queues/", http.StripPrefix("/admin/queues", h))
//
// Every link, form and redirect it produces is relative, so it also works
// behind a reverse proxy that adds a path prefix of its own. client is
// never closed. opts must set Auth or Unauthenticated.
//
// New sends nothing to Redis. It returns a *hopper.ValidationError (which
// matches hopper.ErrInvalid) for a nil client or bad options: a missing
// authentication decision, an invalid prefix, queue name or trusted origin.
// The handler is safe for concurrent use.
func New(client redis.UniversalClient, opts *Options) (http.Handler, error) {
	if client == nil {
		return nil, invalid("client", "nil", "a Redis client is required")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	// NewQueue validates names and the prefix without any I/O.
	probe := cfg.Queues
	if len(probe) == 0 {
		probe = []string{"probe"}
	}
	for _, name := range probe {
		if _, err := hopper.NewQueue(client, name, &hopper.QueueConfig{Prefix: cfg.Prefix}); err != nil {
			return nil, err
		}
	}
	cop := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, invalid("Options.TrustedOrigins", o, err.Error())
		}
	}
	v, err := newViews()
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, client: client, views: v}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusForbidden, "This request came from another site and was refused (cross-origin protection).")
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /queues/{queue}", s.queuePage)
	mux.HandleFunc("GET /queues/{queue}/jobs/{id...}", s.jobPage)
	mux.HandleFunc("GET /schedules", s.schedulesPage)
	mux.HandleFunc("GET /dlq", s.dlqPage)
	mux.HandleFunc("GET /api/overview", s.apiOverview)
	mux.HandleFunc("GET /api/queues/{queue}", s.apiQueue)
	mux.HandleFunc("GET /api/queues/{queue}/jobs/{id...}", s.apiJob)
	mux.HandleFunc("GET /assets/{file}", s.asset)
	mux.HandleFunc("POST /queues/{queue}/actions/{action}", s.action)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	})

	var h http.Handler = mux
	h = cop.Handler(h)
	h = s.guardReadOnly(h)
	h = s.authenticate(h)
	h = s.fixRoot(h)
	h = s.secure(h)
	return h, nil
}

// secure sets the security headers of every response and turns a panic
// into a plain 500: no stack trace of the server ever reaches a response.
func (s *server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Logger.Error("hopper dashboard: panic serving request",
					slog.String("path", r.URL.Path), slog.Any("panic", v))
				http.Error(w, "500 internal error (see the server log)", http.StatusInternalServerError)
			}
		}()
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// fixRoot redirects a request for the mount point without its trailing
// slash ("/admin/queues", which http.StripPrefix turns into "") to the
// mount point with it, so that relative links resolve.
func (s *server) fixRoot(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "" {
			next.ServeHTTP(w, r)
			return
		}
		// RequestURI is the path the client sent, before any StripPrefix.
		p := r.RequestURI
		if i := strings.IndexAny(p, "?#"); i >= 0 {
			p = p[:i]
		}
		last := p[strings.LastIndex(p, "/")+1:]
		if last == "" || strings.HasPrefix(last, ".") {
			s.errorPage(w, r, http.StatusNotFound, "There is no such page.")
			return
		}
		w.Header().Set("Location", "./"+last+"/")
		w.WriteHeader(http.StatusMovedPermanently)
	})
}

// authenticate runs the Auth hook before every route.
func (s *server) authenticate(next http.Handler) http.Handler {
	if s.cfg.Unauthenticated {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.Auth(r) {
			s.cfg.Unauthorized.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guardReadOnly refuses every mutation of a read-only dashboard. Every
// mutation is a POST, and no route takes another unsafe method.
func (s *server) guardReadOnly(next http.Handler) http.Handler {
	if !s.cfg.ReadOnly {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
		default:
			s.errorPage(w, r, http.StatusForbidden, "This dashboard is read-only.")
		}
	})
}

// queueNames returns the queues shown, sorted: the fixed list or the
// registry.
func (s *server) queueNames(ctx context.Context) ([]string, error) {
	names := s.cfg.Queues
	if len(names) == 0 {
		var err error
		if names, err = hopper.ListQueues(ctx, s.client, s.cfg.Prefix); err != nil {
			return nil, err
		}
	}
	names = slices.Clone(names)
	slices.Sort(names)
	if len(names) > MaxQueues {
		names = names[:MaxQueues]
	}
	return names, nil
}

// queue returns the handle of the queue named in the request path, or
// errNotFound if the dashboard does not show that queue.
func (s *server) queue(r *http.Request) (*hopper.Queue, error) {
	name := r.PathValue("queue")
	if s.cfg.queueSet != nil {
		if !s.cfg.queueSet[name] {
			return nil, errNotFound
		}
	} else {
		names, err := hopper.ListQueues(r.Context(), s.client, s.cfg.Prefix)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(names, name) {
			return nil, errNotFound
		}
	}
	q, err := hopper.NewQueue(s.client, name, &hopper.QueueConfig{Prefix: s.cfg.Prefix, Logger: s.cfg.Logger})
	if err != nil {
		return nil, errNotFound
	}
	return q, nil
}

// status maps an error to the HTTP status and the message shown. Only
// errors of hopper's own vocabulary are shown; anything else (a Redis
// failure) is logged and answered with a generic message.
func (s *server) status(r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, "There is no such queue or page."
	case errors.Is(err, hopper.ErrJobNotFound):
		return http.StatusNotFound, "There is no such job (in that state): it may have finished, moved or been removed meanwhile."
	case errors.Is(err, hopper.ErrScheduleNotFound):
		return http.StatusNotFound, "There is no such schedule."
	case errors.Is(err, hopper.ErrJobActive):
		return http.StatusConflict, "The job is running on a worker; it was left alone."
	case errors.Is(err, hopper.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, context.Canceled):
		return 499, "The request was cancelled."
	}
	s.cfg.Logger.Error("hopper dashboard: request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	return http.StatusInternalServerError, "The dashboard could not read or change the queue (see the server log)."
}

// fail answers a page request that failed with err.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := s.status(r, err)
	s.errorPage(w, r, code, msg)
}

// rootOf returns the relative path from the request's URL to the mount
// root: "./" at the root, "../" one level down, and so on. Browsers resolve
// relative links against the URL they requested, so the dashboard needs to
// know neither where it is mounted nor what a proxy put in front.
func rootOf(r *http.Request) string {
	depth := strings.Count(r.URL.EscapedPath(), "/") - 1
	if depth <= 0 {
		return "./"
	}
	return strings.Repeat("../", depth)
}

// redirect answers a POST with 303 See Other to target, a path relative to
// the mount root (built by the server, never taken from the request).
func redirect(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Location", rootOf(r)+target)
	w.WriteHeader(http.StatusSeeOther)
}

// queuePath and jobPath build links relative to the mount root.
func queuePath(queue string) string { return "queues/" + url.PathEscape(queue) }

func jobPath(queue, id string) string {
	return queuePath(queue) + "/jobs/" + url.PathEscape(id)
}

func itoa(n int) string { return fmt.Sprint(n) }
