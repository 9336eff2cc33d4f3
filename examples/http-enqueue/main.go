// Command http-enqueue is the request-cycle pattern: an HTTP API enqueues
// work and answers at once; a worker in the same process (or another one)
// does the work; the client polls the job's status.
//
//	POST /api/jobs/send-email   {"to","subject","html"} -> 202 {"jobId"}
//	                            (400 {"error"} on bad JSON or a missing field)
//	GET  /api/jobs/{id}         -> {"id","state","progress","result","error"}
//	                            (404 for an unknown id)
//
// Run it and try:
//
//	go run ./examples/http-enqueue            # embedded Redis (miniredis); ADDR=:8081 by default
//	curl -s -XPOST localhost:8081/api/jobs/send-email \
//	     -d '{"to":"ada@example.com","subject":"Hi","html":"<p>Hello</p>"}'
//	curl -s localhost:8081/api/jobs/<jobId>
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	if err := run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example", addr); err != nil {
		fmt.Fprintln(os.Stderr, "http-enqueue:", err)
		os.Exit(1)
	}
}

// SendEmail is the request body and the job payload.
type SendEmail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	HTML    string `json:"html"`
}

// JobStatus is what GET /api/jobs/{id} answers.
type JobStatus struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	State    hopper.State    `json:"state"`
	Attempts int             `json:"attempts"`
	Progress json.RawMessage `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// api returns the HTTP API over queue q.
func api(q *hopper.Queue) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/jobs/send-email", func(w http.ResponseWriter, r *http.Request) {
		var req SendEmail
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
			return
		}
		var missing []string
		for _, f := range []struct{ name, v string }{{"to", req.To}, {"subject", req.Subject}, {"html", req.HTML}} {
			if strings.TrimSpace(f.v) == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "missing field(s): " + strings.Join(missing, ", ")})
			return
		}
		job, err := q.AddJSON(r.Context(), "send-email", req, &hopper.JobOptions{Attempts: 3})
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not enqueue, try again"})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"jobId": job.ID})
	})
	mux.HandleFunc("GET /api/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, err := q.Job(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, hopper.ErrJobNotFound), errors.Is(err, hopper.ErrInvalid):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such job"})
			return
		case err != nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "try again"})
			return
		}
		st := JobStatus{ID: j.ID, Name: j.Name, State: j.State, Attempts: j.AttemptsMade, Progress: j.Progress}
		if json.Valid(j.Result) {
			st.Result = j.Result
		}
		if j.State == hopper.StateDead {
			st.Error = j.LastError
		}
		writeJSON(w, http.StatusOK, st)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// sendEmail is the worker's handler: it "sends" the email in a few steps,
// reporting progress, and stores the provider's message ID.
func sendEmail(ctx context.Context, job *hopper.Job, e SendEmail) error {
	for p := 25; p <= 100; p += 25 {
		select {
		case <-time.After(50 * time.Millisecond): // rendering, uploading, sending...
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := job.UpdateProgress(ctx, p); err != nil {
			return err
		}
	}
	if strings.HasSuffix(e.To, "@invalid.example") {
		return hopper.Permanent(fmt.Errorf("550 no such user %s", e.To))
	}
	job.SetResult([]byte(fmt.Sprintf(`{"messageId":"msg-%s"}`, job.ID)))
	return nil
}

func run(ctx context.Context, out io.Writer, redisURL, prefix, addr string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()
	q, err := hopper.NewQueue(rdb, "emails", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	w, err := hopper.NewWorker(rdb, "emails", hopper.JSONHandler(sendEmail),
		&hopper.WorkerConfig{Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Close(); <-stopped }()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api(q), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	fmt.Fprintf(out, "try: curl -s -XPOST http://%s/api/jobs/send-email -d '{\"to\":\"ada@example.com\",\"subject\":\"Hi\",\"html\":\"<p>Hello</p>\"}'\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
