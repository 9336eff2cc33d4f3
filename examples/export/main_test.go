package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/redistest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExport(t *testing.T) {
	redistest.EachURL(t, "ex", func(t *testing.T, redisURL, prefix string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dir := t.TempDir()
		var out bytes.Buffer
		require.NoError(t, run(ctx, &out, redisURL, prefix, dir))
		s := out.String()
		require.Regexp(t, `export csv: completed, progress 100%, 2000 rows, \d+ bytes in user-42-.*\.csv`, s)
		require.Regexp(t, `export json: completed, progress 100%, 2000 rows, \d+ bytes in user-42-.*\.json`, s)
		require.Contains(t, s, "log (attempt 1): wrote 2000 rows")
		require.Regexp(t, `then enqueued export-ready: \{"path":".*user-42-.*\.csv","subject":"Your export is ready","to":"ada@example.com"\}`, s)

		// The files are real and complete, and their sizes are the reported ones.
		for _, m := range regexp.MustCompile(`(\d+) bytes in (user-42-\S+)`).FindAllStringSubmatch(s, -1) {
			st, err := os.Stat(filepath.Join(dir, m[2]))
			require.NoError(t, err)
			require.Equal(t, m[1], strconv.FormatInt(st.Size(), 10))
			b, err := os.ReadFile(filepath.Join(dir, m[2]))
			require.NoError(t, err)
			if filepath.Ext(m[2]) == ".csv" {
				rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
				require.NoError(t, err)
				require.Len(t, rows, 2001, "header + 2000 rows")
				require.Equal(t, []string{"2026-01-01T00:00:00Z", "user 42 action 0"}, rows[1])
			} else {
				var acts []Activity
				require.NoError(t, json.Unmarshal(b, &acts))
				require.Len(t, acts, 2000)
				require.Equal(t, "user 42 action 1999", acts[1999].Action)
			}
		}
	})
}

func TestExportOptions(t *testing.T) {
	require.Equal(t, 5*time.Minute, exportOptions.Timeout)
	require.Equal(t, 100, exportOptions.KeepCompleted.Count)
	require.Equal(t, 50, exportOptions.KeepDead.Count)
}
