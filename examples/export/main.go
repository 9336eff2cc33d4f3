// Command export generates user-data exports (CSV or JSON) in the
// background, the way a "download my data" button works:
//
//   - the export job has a 5-minute timeout (its ctx is cancelled then), and
//     the queue keeps the last 100 completed and 50 failed exports;
//
//   - the handler writes a real file, reporting progress (a percentage) and
//     log lines as it goes, and stores {path, size} as its result;
//
//   - when the file is ready it enqueues the "your export is ready" email.
//
//     go run ./examples/export            # embedded Redis (miniredis)
//     REDIS_URL=redis://localhost:6379 go run ./examples/export
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "hopper-exports-")
	if err == nil {
		err = run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example", dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(1)
	}
}

// ExportRequest is the payload of an export job.
type ExportRequest struct {
	UserID int    `json:"user_id"`
	Format string `json:"format"` // "csv" or "json"
	Email  string `json:"email"`
}

// ExportResult is what a finished export stores as its result.
type ExportResult struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Rows int    `json:"rows"`
}

// Activity is one row of the user's data.
type Activity struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"`
}

// activities is the fake data source: a user's activity history.
func activities(userID, n int) []Activity {
	out := make([]Activity, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = Activity{At: base.Add(time.Duration(i) * time.Hour), Action: fmt.Sprintf("user %d action %d", userID, i)}
	}
	return out
}

// exportOptions are the export jobs' options: the 5-minute timeout and the
// retention of the seed pattern.
var exportOptions = hopper.JobOptions{
	Attempts:      3,
	Timeout:       5 * time.Minute,
	KeepCompleted: &hopper.Retention{Count: 100},
	KeepDead:      &hopper.Retention{Count: 50},
}

// exporter is the export handler: it writes the file in chunks, reporting
// progress, then enqueues the notification email.
func exporter(dir string, emails *hopper.Queue, rows int) hopper.Handler {
	return hopper.JSONHandler(func(ctx context.Context, job *hopper.Job, req ExportRequest) error {
		if req.Format != "csv" && req.Format != "json" {
			return hopper.Permanent(fmt.Errorf("unknown format %q", req.Format))
		}
		data := activities(req.UserID, rows)
		path := filepath.Join(dir, fmt.Sprintf("user-%d-%s.%s", req.UserID, job.ID, req.Format))
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := job.Log(ctx, "writing "+filepath.Base(path)); err != nil {
			return err
		}
		const chunks = 4
		var cw *csv.Writer
		if req.Format == "csv" {
			cw = csv.NewWriter(f)
			if err := cw.Write([]string{"at", "action"}); err != nil {
				return err
			}
		} else if _, err := io.WriteString(f, "[\n"); err != nil {
			return err
		}
		for c := range chunks {
			if err := ctx.Err(); err != nil {
				return err // the 5-minute timeout, or a shutdown
			}
			for i := c * len(data) / chunks; i < (c+1)*len(data)/chunks; i++ {
				if cw != nil {
					err = cw.Write([]string{data[i].At.Format(time.RFC3339), data[i].Action})
				} else {
					var b []byte
					if b, err = json.Marshal(data[i]); err == nil {
						sep := ",\n"
						if i == len(data)-1 {
							sep = "\n"
						}
						_, err = f.Write(append(b, sep...))
					}
				}
				if err != nil {
					return err
				}
			}
			if err := job.UpdateProgress(ctx, (c+1)*100/chunks); err != nil {
				return err
			}
		}
		if cw != nil {
			cw.Flush()
			err = cw.Error()
		} else {
			_, err = io.WriteString(f, "]\n")
		}
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		res, _ := json.Marshal(ExportResult{Path: path, Size: st.Size(), Rows: len(data)})
		job.SetResult(res)
		if err := job.Log(ctx, fmt.Sprintf("wrote %d rows, %d bytes", len(data), st.Size())); err != nil {
			return err
		}
		// The job ID makes the email idempotent: a retry of this export after
		// the email was enqueued does not send a second one.
		_, err = emails.AddJSON(ctx, "export-ready", map[string]string{
			"to": req.Email, "subject": "Your export is ready", "path": path,
		}, &hopper.JobOptions{ID: "export-ready-" + job.ID})
		return err
	})
}

func run(ctx context.Context, out io.Writer, redisURL, prefix, dir string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()
	exports, err := hopper.NewQueue(rdb, "exports", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	emails, err := hopper.NewQueue(rdb, "emails", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	w, err := hopper.NewWorker(rdb, "exports", exporter(dir, emails, 2000), &hopper.WorkerConfig{
		Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Close(); <-stopped }()

	for _, format := range []string{"csv", "json"} {
		opts := exportOptions
		job, err := exports.AddJSON(ctx, "export", ExportRequest{UserID: 42, Format: format, Email: "ada@example.com"}, &opts)
		if err != nil {
			return err
		}
		done, err := exports.Wait(ctx, job.ID)
		if err != nil {
			return err
		}
		var res ExportResult
		if err := json.Unmarshal(done.Result, &res); err != nil {
			return err
		}
		fmt.Fprintf(out, "export %s: %s, progress %s%%, %d rows, %d bytes in %s\n", format, done.State, done.Progress,
			res.Rows, res.Size, filepath.Base(res.Path))
		for _, l := range done.Logs {
			fmt.Fprintf(out, "  log (attempt %d): %s\n", l.Attempt, l.Message)
		}
		mail, err := emails.Job(ctx, "export-ready-"+job.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  then enqueued %s: %s\n", mail.Name, mail.Payload)
	}
	return nil
}
