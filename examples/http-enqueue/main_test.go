package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper/internal/redistest"
	"github.com/hopperq/hopper/internal/syncbuf"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	return resp.StatusCode, v
}

func TestHTTPEnqueue(t *testing.T) {
	redistest.EachURL(t, "ex", func(t *testing.T, redisURL, prefix string) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncbuf.Buffer{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, out, redisURL, prefix, "127.0.0.1:0") }()
		re := regexp.MustCompile(`listening on (http://\S+)`)
		deadline := time.Now().Add(10 * time.Second)
		for !re.MatchString(out.String()) {
			require.True(t, time.Now().Before(deadline), "the server did not start")
			time.Sleep(5 * time.Millisecond)
		}
		base := re.FindStringSubmatch(out.String())[1]
		require.Contains(t, out.String(), "try: curl")

		// Validation: 400 with a JSON error, nothing enqueued.
		code, v := call(t, "POST", base+"/api/jobs/send-email", `{"to": "ada@`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, v["error"], "invalid JSON")
		code, v = call(t, "POST", base+"/api/jobs/send-email", `{"to":"ada@example.com","html":"<p>x</p>"}`)
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "missing field(s): subject", v["error"])
		code, _ = call(t, "POST", base+"/api/jobs/send-email", `{"to":"a@example.com","subject":"s","html":"h","cc":"x"}`)
		require.Equal(t, http.StatusBadRequest, code, "unknown fields are refused")

		// Enqueue: 202 at once; the job is not done yet when the answer comes.
		code, v = call(t, "POST", base+"/api/jobs/send-email", `{"to":"ada@example.com","subject":"Hi","html":"<p>Hello</p>"}`)
		require.Equal(t, http.StatusAccepted, code)
		id, _ := v["jobId"].(string)
		require.NotEmpty(t, id)
		code, v = call(t, "GET", base+"/api/jobs/"+id, "")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, []string{"waiting", "active"}, v["state"], "the POST did not wait for the work")

		poll := func(id, want string) map[string]any {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, v := call(t, "GET", base+"/api/jobs/"+id, "")
				if v["state"] == want {
					return v
				}
				require.True(t, time.Now().Before(deadline), "job %s never %s: %v", id, want, v)
				time.Sleep(20 * time.Millisecond)
			}
		}
		v = poll(id, "completed")
		require.EqualValues(t, 100, v["progress"])
		require.Equal(t, map[string]any{"messageId": "msg-" + id}, v["result"])
		require.EqualValues(t, 1, v["attempts"])

		_, v = call(t, "POST", base+"/api/jobs/send-email", `{"to":"x@invalid.example","subject":"Hi","html":"h"}`)
		v = poll(v["jobId"].(string), "dead")
		require.Equal(t, "550 no such user x@invalid.example", v["error"])

		code, v = call(t, "GET", base+"/api/jobs/nope", "")
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, "no such job", v["error"])
		code, _ = call(t, "GET", base+"/api/jobs/bad%20id", "")
		require.Equal(t, http.StatusNotFound, code)

		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("run did not stop")
		}
	})
}
