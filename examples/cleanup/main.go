// Command cleanup shows scheduled maintenance:
//
//   - a daily job at midnight ("0 0 * * *") that deletes expired sessions
//     and audit logs older than a retention window from the app's store, and
//     files older than 30 days from an uploads directory, in batches, and
//     returns what it deleted as its result;
//   - an hourly sync ("0 * * * *") with an external CRM.
//
// The store is an interface (an in-memory one here). So that you need not
// wait for midnight, the program triggers both schedules once, as an
// operator would from the dashboard, and prints their results.
//
//	go run ./examples/cleanup            # embedded Redis (miniredis)
//	REDIS_URL=redis://localhost:6379 go run ./examples/cleanup
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/exampleredis"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "hopper-uploads-")
	if err == nil {
		defer os.RemoveAll(dir)
		err = seedUploads(dir, time.Now())
	}
	if err == nil {
		err = run(ctx, os.Stdout, os.Getenv("REDIS_URL"), "hopper-example", newMemStore(time.Now()), dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		os.Exit(1)
	}
}

// Store is the part of the app's database the cleanup needs. Each delete
// removes at most limit rows and returns how many it removed, so the job
// works in batches and never holds a long transaction.
type Store interface {
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error)
	DeleteAuditLogsBefore(ctx context.Context, before time.Time, limit int) (int, error)
}

// Retention windows and batch size.
const (
	auditRetention = 90 * 24 * time.Hour
	fileRetention  = 30 * 24 * time.Hour
	batch          = 100
)

// Report is the daily cleanup's result.
type Report struct {
	Sessions  int `json:"sessions"`
	AuditLogs int `json:"audit_logs"`
	Files     int `json:"files"`
}

// cleanup deletes in batches until a batch comes back short.
func cleanup(ctx context.Context, st Store, uploads string, now time.Time) (Report, error) {
	var r Report
	for {
		n, err := st.DeleteExpiredSessions(ctx, now, batch)
		if err != nil {
			return r, err
		}
		r.Sessions += n
		if n < batch {
			break
		}
	}
	for {
		n, err := st.DeleteAuditLogsBefore(ctx, now.Add(-auditRetention), batch)
		if err != nil {
			return r, err
		}
		r.AuditLogs += n
		if n < batch {
			break
		}
	}
	n, err := deleteOldFiles(ctx, uploads, now.Add(-fileRetention))
	r.Files = n
	return r, err
}

// deleteOldFiles removes regular files under dir last modified before
// cutoff, checking ctx between files.
func deleteOldFiles(ctx context.Context, dir string, cutoff time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if info.Mode().IsRegular() && info.ModTime().Before(cutoff) {
			if err := os.Remove(path); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func run(ctx context.Context, out io.Writer, redisURL, prefix string, st Store, uploads string) error {
	rdb, closeRedis, err := exampleredis.Connect(redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()
	q, err := hopper.NewQueue(rdb, "maintenance", &hopper.QueueConfig{Prefix: prefix})
	if err != nil {
		return err
	}
	for _, s := range []struct{ key, spec string }{{"daily-cleanup", "0 0 * * *"}, {"hourly-crm-sync", "0 * * * *"}} {
		sc, err := q.UpsertSchedule(ctx, s.key, s.spec, s.key, nil, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "schedule %-16s %-11q next run %s\n", sc.Key, sc.Spec, sc.Next.UTC().Format(time.RFC3339))
	}
	mux := hopper.NewMux()
	mux.HandleFunc("daily-cleanup", func(ctx context.Context, job *hopper.Job) error {
		r, err := cleanup(ctx, st, uploads, time.Now())
		if err != nil {
			return err
		}
		b, _ := json.Marshal(r)
		job.SetResult(b)
		return nil
	})
	mux.HandleFunc("hourly-crm-sync", func(ctx context.Context, job *hopper.Job) error {
		// A real sync pages through the CRM's changes since the last run.
		job.SetResult([]byte(`{"contacts_updated":12}`))
		return nil
	})
	w, err := hopper.NewWorker(rdb, "maintenance", mux, &hopper.WorkerConfig{Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	defer func() { _ = w.Close(); <-stopped }()

	for _, key := range []string{"daily-cleanup", "hourly-crm-sync"} {
		job, err := q.TriggerSchedule(ctx, key)
		if err != nil {
			return err
		}
		done, err := q.Wait(ctx, job.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s (triggered now): %s %s\n", key, done.State, done.Result)
	}
	return nil
}

// memStore is an in-memory Store.
type memStore struct {
	mu       sync.Mutex
	sessions map[string]time.Time // id -> expiry
	audit    []time.Time          // log entry times
}

// newMemStore returns a store with 250 expired and 5 live sessions, and
// 230 audit entries older than the retention and 10 recent ones.
func newMemStore(now time.Time) *memStore {
	s := &memStore{sessions: map[string]time.Time{}}
	for i := range 255 {
		exp := now.Add(-time.Hour)
		if i >= 250 {
			exp = now.Add(time.Hour)
		}
		s.sessions[fmt.Sprint("s", i)] = exp
	}
	for i := range 240 {
		at := now.Add(-auditRetention - 24*time.Hour)
		if i >= 230 {
			at = now.Add(-24 * time.Hour)
		}
		s.audit = append(s.audit, at)
	}
	return s
}

func (s *memStore) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, exp := range s.sessions {
		if n == limit {
			break
		}
		if exp.Before(now) {
			delete(s.sessions, id)
			n++
		}
	}
	return n, nil
}

func (s *memStore) DeleteAuditLogsBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.audit[:0]
	n := 0
	for _, at := range s.audit {
		if n < limit && at.Before(before) {
			n++
			continue
		}
		kept = append(kept, at)
	}
	s.audit = kept
	return n, nil
}

// seedUploads writes 3 files older than 30 days and 2 recent ones.
func seedUploads(dir string, now time.Time) error {
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("upload-%d.bin", i))
		if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
			return err
		}
		mod := now.Add(-40 * 24 * time.Hour)
		if i >= 3 {
			mod = now.Add(-24 * time.Hour)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			return err
		}
	}
	return nil
}
