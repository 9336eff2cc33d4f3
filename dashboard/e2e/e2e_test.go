package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/dashboard"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

const mount = "/admin/queues"

var quiet = slog.New(slog.DiscardHandler)

// chromium returns the browser binary, or skips the test (fails it in CI).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOPPER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (apt-get install chromium), and CI is set: the browser test must run")
	}
	t.Skip("no Chromium found (apt-get install chromium); set CI=1 to make this a failure")
	return ""
}

// confirms answers the tab's confirm() dialogs and counts them.
type confirms struct {
	accept atomic.Bool
	seen   atomic.Int32
}

// browser starts a headless Chromium for the test and returns a tab.
func browser(t *testing.T) (context.Context, *confirms) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first call starts the browser; it must not carry a timeout (that
	// would stop the browser with it), so a watchdog bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		require.NoError(t, err, "start Chromium")
	case <-time.After(60 * time.Second):
		t.Fatal("Chromium did not start within 60s")
	}
	// Answer confirm() dialogs as a user pressing OK or Cancel.
	cf := &confirms{}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: cf.accept.Load()})
			cf.seen.Add(1)
		}
	}()
	return ctx, cf
}

// backend is the Redis the test uses: the real server at
// HOPPER_TEST_REDIS_ADDR, else an embedded miniredis; with a random key
// prefix whose keys are deleted afterwards.
type backend struct {
	client redis.UniversalClient
	prefix string
	mr     *miniredis.Miniredis
}

func newBackend(t *testing.T, embedded bool) *backend {
	t.Helper()
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	b := &backend{prefix: "e2e" + hex.EncodeToString(rb[:])}
	if addr := os.Getenv("HOPPER_TEST_REDIS_ADDR"); addr != "" && !embedded {
		c := redis.NewClient(&redis.Options{Addr: addr})
		b.client = c
		t.Cleanup(func() {
			ctx := context.Background()
			iter := c.Scan(ctx, 0, b.prefix+":*", 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			_ = c.Close()
		})
		return b
	}
	b.mr = miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: b.mr.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	b.client = c
	return b
}

func (b *backend) queue(t *testing.T, name string) *hopper.Queue {
	t.Helper()
	q, err := hopper.NewQueue(b.client, name, &hopper.QueueConfig{Prefix: b.prefix, Logger: quiet})
	require.NoError(t, err)
	return q
}

// run starts a worker for the test.
func (b *backend) run(t *testing.T, queue string, h hopper.Handler) {
	t.Helper()
	w, err := hopper.NewWorker(b.client, queue, h, &hopper.WorkerConfig{Prefix: b.prefix, Logger: quiet,
		PollInterval: time.Second, LeaseDuration: 3 * time.Second, Concurrency: 4})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
		require.NoError(t, <-done)
	})
}

// serve mounts the dashboard under mount on a real HTTP server.
func serve(t *testing.T, b *backend, opts dashboard.Options) string {
	t.Helper()
	opts.Prefix = b.prefix
	opts.Logger = quiet
	d, err := dashboard.New(b.client, &opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(mount+"/", http.StripPrefix(mount, d))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + mount + "/"
}

func waitState(t *testing.T, q *hopper.Queue, id string, s hopper.State) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		j, err := q.Job(context.Background(), id)
		if err == nil && j.State == s {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not reach %s (last: %v, %v)", id, s, j, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRetryFailedJobInBrowser opens the overview, clicks into a failed job,
// presses Retry, and sees the job complete, all in a real Chromium, with
// basic auth and cross-origin protection in force.
func TestRetryFailedJobInBrowser(t *testing.T) {
	ctx, cf := browser(t)
	b := newBackend(t, false)
	q := b.queue(t, "email")
	var broken atomic.Bool
	broken.Store(true)
	b.run(t, "email", hopper.HandlerFunc(func(ctx context.Context, j *hopper.Job) error {
		if broken.Load() {
			return errors.New("smtp: 421 service not available")
		}
		j.SetResult([]byte(`{"delivered":true}`))
		return nil
	}))
	_, err := q.Add(context.Background(), "send", []byte(`{"to":"ada@example.com"}`),
		&hopper.JobOptions{ID: "welcome-ada", Attempts: 5, Backoff: hopper.Fixed(time.Hour)})
	require.NoError(t, err)
	waitState(t, q, "welcome-ada", hopper.StateFailed)
	broken.Store(false) // the outage is over; the retry is an hour away

	base := serve(t, b, dashboard.Options{Auth: dashboard.BasicAuth("admin", "pw"), RefreshInterval: time.Second})
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw"))

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(c, actions...), what)
	}
	text := func(sel string) string {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return s
	}
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
	require.NoError(t, err)
	run("open the overview",
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-queue="email"]`)),
	)
	require.Equal(t, "1", text(`tr[data-queue="email"] [data-live="email|failed"]`))

	// Live counts: a job added now shows up without a reload.
	_, err = q.Add(context.Background(), "send", []byte(`{}`), &hopper.JobOptions{ID: "later", Delay: time.Hour})
	require.NoError(t, err)
	run("mark the page, to tell a reload from a live update",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.hopperE2E = true`))
			return err
		}))
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	_, err = chromedp.Run(c, chromedp.Poll[bool](
		`document.querySelector('[data-live="email|delayed"]').textContent === "1" && window.hopperE2E === true`,
		chromedp.WithPollingTimeout(15*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
	cancel()
	require.NoError(t, err, "the delayed count changes without a reload")

	run("click into the failed job",
		chromedp.Click(chromedp.CSS(`tr[data-queue="email"] a[href$="state=failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.jid`)),
		chromedp.Click(chromedp.CSS(`a.jid`)),
		chromedp.WaitVisible(chromedp.CSS(`#job-state[data-job-state="failed"]`)),
	)
	require.Contains(t, text(`pre.err`), "421 service not available")

	run("press Retry and cancel the confirmation",
		chromedp.Click(chromedp.CSS(`form[action$="/actions/retry"] button`)))
	deadline := time.Now().Add(10 * time.Second)
	for cf.seen.Load() < 1 {
		require.True(t, time.Now().Before(deadline), "no confirmation dialog")
		time.Sleep(10 * time.Millisecond)
	}
	run("still on the failed job", chromedp.WaitVisible(chromedp.CSS(`#job-state[data-job-state="failed"]`)))
	waitState(t, q, "welcome-ada", hopper.StateFailed)

	cf.accept.Store(true)
	run("press Retry (confirming) and see the job complete",
		chromedp.Click(chromedp.CSS(`form[action$="/actions/retry"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#job-state[data-job-state="completed"]`)),
	)
	require.Contains(t, text(`main`), `"delivered": true`)
	waitState(t, q, "welcome-ada", hopper.StateCompleted)
	j, err := q.Job(context.Background(), "welcome-ada")
	require.NoError(t, err)
	require.Equal(t, 2, j.AttemptsMade)

	require.Equal(t, int32(2), cf.seen.Load(), "each press asked for confirmation")

	if os.Getenv("HOPPER_SCREENSHOTS") != "" {
		screenshots(t, ctx)
	}
}

// screenshots renders the main pages with demo data into docs/img.
func screenshots(t *testing.T, ctx context.Context) {
	b := newBackend(t, true) // miniredis: its clock can be set, for an hour of throughput
	demo(t, b)
	base := serve(t, b, dashboard.Options{Unauthenticated: true, Title: "hopper · acme", RefreshInterval: -1})
	dir := filepath.Join("..", "..", "docs", "img")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	shots := []struct{ file, path, wait string }{
		{"dashboard-overview.png", "", `tr[data-queue="email"]`},
		{"dashboard-queue.png", "queues/email?state=completed", `a.jid`},
		{"dashboard-job.png", "queues/billing/jobs/invoice-1042", `#job-state`},
		{"dashboard-dlq.png", "dlq?queue=billing", `a.jid`},
		{"dashboard-schedules.png", "schedules", `table`},
	}
	for _, s := range shots {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := chromedp.Do(c,
			chromedp.EmulateViewport(1280, 760),
			chromedp.Navigate(base+s.path),
			chromedp.WaitVisible(chromedp.CSS(s.wait)),
		)
		require.NoError(t, err, s.file)
		png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
		cancel()
		require.NoError(t, err, s.file)
		require.NoError(t, os.WriteFile(filepath.Join(dir, s.file), png, 0o644))
	}
}

// demo fills a few queues with an hour of history.
func demo(t *testing.T, b *backend) {
	ctx := context.Background()
	email, billing, reports := b.queue(t, "email"), b.queue(t, "billing"), b.queue(t, "reports")
	mux := hopper.NewMux()
	mux.HandleFunc("send", func(ctx context.Context, j *hopper.Job) error {
		if strings.Contains(string(j.Payload), "bounce") {
			return hopper.Permanent(errors.New("smtp: 550 mailbox unavailable"))
		}
		j.SetResult([]byte(`{"message_id":"<4f1c@mx.acme.test>"}`))
		return nil
	})
	mux.HandleFunc("charge", func(ctx context.Context, j *hopper.Job) error {
		if strings.Contains(string(j.Payload), "declined") {
			var m map[string]any
			_ = j.Decode(&m)
			panic(fmt.Sprintf("nil card token for customer %v", m["customer"]))
		}
		return nil
	})
	mux.HandleFunc("render", func(context.Context, *hopper.Job) error { return nil })
	for _, q := range []string{"email", "billing", "reports"} {
		b.run(t, q, mux)
	}
	now := time.Now()
	var n int
	// 45 minutes of throughput, one minute at a time on miniredis' clock.
	for m := 45; m >= 1; m-- {
		b.mr.SetTime(now.Add(-time.Duration(m) * time.Minute))
		k := 6 + int(4*math.Sin(float64(m)/5)) + m%3
		for i := range k {
			n++
			payload := fmt.Sprintf(`{"to":"user%d@acme.test","template":"welcome"}`, n)
			if i == 0 && m%11 == 0 {
				payload = fmt.Sprintf(`{"to":"bounce%d@acme.test"}`, n)
			}
			_, err := email.Add(ctx, "send", []byte(payload), &hopper.JobOptions{ID: fmt.Sprintf("mail-%d", n), Attempts: 3})
			require.NoError(t, err)
		}
		for i := range 1 + (m/5)%2 {
			_, err := billing.Add(ctx, "charge", []byte(fmt.Sprintf(`{"customer":"cus_%d%d","cents":%d}`, m, i, 1999+m)), nil)
			require.NoError(t, err)
		}
		if m == 25 {
			require.NoError(t, reports.Pause(ctx))
			for i := range 6 {
				_, err := reports.Add(ctx, "render", []byte(fmt.Sprintf(`{"report":"weekly","page":%d}`, i)), nil)
				require.NoError(t, err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, q := range []*hopper.Queue{email, billing} {
			for {
				c, err := q.Counts(ctx)
				require.NoError(t, err)
				if c.Waiting+c.Active == 0 {
					break
				}
				require.True(t, time.Now().Before(deadline), "demo jobs did not finish")
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	b.mr.SetTime(time.Now())
	_, err := billing.Add(ctx, "charge", []byte(`{"customer":"cus_7","cents":4900,"card":"declined"}`),
		&hopper.JobOptions{ID: "invoice-1042", Attempts: 1, Metadata: map[string]string{"team": "42", "plan": "pro"}})
	require.NoError(t, err)
	waitState(t, billing, "invoice-1042", hopper.StateDead)
	for i := range 4 {
		_, err := email.Add(ctx, "send", []byte(`{"to":"later@acme.test"}`), &hopper.JobOptions{Delay: time.Duration(i+1) * 10 * time.Minute})
		require.NoError(t, err)
	}
	_, err = reports.UpsertSchedule(ctx, "weekly-digest", "0 9 * * 1", "render", []byte(`{"report":"weekly"}`),
		&hopper.ScheduleOptions{TimeZone: "Europe/Paris"})
	require.NoError(t, err)
	_, err = billing.UpsertSchedule(ctx, "renewals", "@hourly", "charge", []byte(`{"renewals":true}`), nil)
	require.NoError(t, err)
	_, err = billing.TriggerSchedule(ctx, "renewals")
	require.NoError(t, err)
	// Let every worker register at its next maintenance pass on the
	// current clock, so the overview lists them.
	b.mr.SetTime(time.Now())
	for _, q := range []*hopper.Queue{email, billing, reports} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := q.Stats(ctx)
			require.NoError(t, err)
			if len(st.Workers) > 0 {
				break
			}
			require.True(t, time.Now().Before(deadline), "workers did not register")
			b.mr.SetTime(time.Now())
			time.Sleep(20 * time.Millisecond)
		}
	}
}
