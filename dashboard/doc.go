// Package dashboard is a web UI for hopper queues: an overview of every
// queue, a page per queue with its jobs by state, a page per job, the
// recurring schedules and the dead-letter queue, with the actions to steer
// them (retry, promote, remove, retry all, clean, drain, pause, resume, run
// a schedule now). It is built only on hopper's public API and the standard
// library: server-rendered html/template pages, one embedded stylesheet and
// one small script, no CDN — it works offline.
//
// # Mounting
//
// New returns an http.Handler that serves the dashboard at its root. Mount it
// under any path by stripping that path first; every link, form and redirect
// it produces is relative, so it needs no base-path setting and also works
// behind a reverse proxy that adds a prefix of its own.
//
//	h, err := dashboard.New(rdb, &dashboard.Options{
//		Auth: dashboard.BasicAuth("admin", os.Getenv("HOPPER_DASHBOARD_PASSWORD")),
//	})
//	if err != nil {
//		return err
//	}
//
// net/http:
//
//	mux.Handle("/admin/queues/", http.StripPrefix("/admin/queues", h))
//
// chi (Mount does not strip the prefix from the request for a plain
// http.Handler):
//
//	r.Mount("/admin/queues", http.StripPrefix("/admin/queues", h))
//
// echo:
//
//	g := http.StripPrefix("/admin/queues", h)
//	e.Any("/admin/queues", echo.WrapHandler(g))
//	e.Any("/admin/queues/*", echo.WrapHandler(g))
//
// gin:
//
//	g := gin.WrapH(http.StripPrefix("/admin/queues", h))
//	r.Any("/admin/queues", g)
//	r.Any("/admin/queues/*path", g)
//
// Strip the prefix without its trailing slash ("/admin/queues", not
// "/admin/queues/"). A request for the bare prefix is redirected to the
// prefix with a slash.
//
// # Routes
//
// Pages (GET): "/" (overview; ?minutes= throughput window, 5..60),
// "/queues/{queue}" (?state=, ?page=, ?size= up to MaxPageSize),
// "/queues/{queue}/jobs/{id}", "/schedules", "/dlq" (?queue=, ?page=,
// ?size=). JSON (GET), polled by the pages: "/api/overview",
// "/api/queues/{queue}", "/api/queues/{queue}/jobs/{id}". Actions (POST
// only): "/queues/{queue}/actions/{action}" with action one of pause,
// resume, retry, promote, remove, retry-all, promote-all, clean, drain,
// trigger, schedule-pause, schedule-resume; each answers 303 See Other to
// the page it came from.
//
// # Live updates
//
// Open pages poll a JSON endpoint every Options.RefreshInterval (5s by
// default; a negative interval turns it off) and update the counts, paused
// flags and sparklines in place, without reloading. Polling pauses while
// the browser tab is hidden. A job page reloads itself when its job changes
// state. Short polling was chosen over server-sent events because it needs
// no long-lived connections through proxies and no goroutine per open tab;
// each poll costs the same reads as the page it updates.
//
// # Security
//
//   - Authentication: Options.Auth runs before every route (BasicAuth builds
//     one that compares in constant time). New refuses options that set
//     neither Auth nor Unauthenticated.
//   - Mutations are POST only and checked by http.CrossOriginProtection
//     (Sec-Fetch-Site, else Origin against Host): a form posted from another
//     site is refused with 403. Options.TrustedOrigins admits origins a
//     proxy rewrites.
//   - Options.ReadOnly hides every action and answers every POST with 403.
//   - Job data (payloads, names, errors, metadata) is rendered through
//     html/template, so markup in it shows as text; a Content-Security-Policy
//     allows only the dashboard's own script and stylesheet.
//   - Page sizes, page numbers, time windows and clean ages are clamped or
//     validated; payloads are shown up to MaxPayloadShown bytes.
//   - Responses never carry the server's stack traces or Redis errors: those
//     go to Options.Logger and the response says only that something failed.
//     (A job's own recorded stack trace, from a handler panic, is job data
//     and is shown on its page.)
package dashboard
