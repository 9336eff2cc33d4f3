package dashboard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/dashboard"
	"github.com/redis/go-redis/v9"
)

// Mount the dashboard under /admin/queues with basic auth, then look at it
// as a browser would.
func Example() {
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	q, err := hopper.NewQueue(rdb, "email", nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := q.Add(ctx, "welcome", []byte(`{"to":"ada@example.com"}`), &hopper.JobOptions{ID: "welcome-ada"}); err != nil {
		log.Fatal(err)
	}

	h, err := dashboard.New(rdb, &dashboard.Options{Auth: dashboard.BasicAuth("admin", "correct horse")})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/queues/", http.StripPrefix("/admin/queues", h))

	send := func(method, path string, auth bool, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(url.Values{}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			r.SetBasicAuth("admin", "correct horse")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}

	fmt.Println("overview without credentials:", send("GET", "/admin/queues/", false).Code)
	w := send("GET", "/admin/queues/queues/email/jobs/welcome-ada", true)
	fmt.Println("job page:", w.Code, strings.Contains(w.Body.String(), "ada@example.com"))
	w = send("POST", "/admin/queues/queues/email/actions/pause", true, "Sec-Fetch-Site", "cross-site")
	fmt.Println("pause posted from another site:", w.Code)
	w = send("POST", "/admin/queues/queues/email/actions/pause", true, "Sec-Fetch-Site", "same-origin")
	fmt.Println("pause from the dashboard:", w.Code, w.Header().Get("Location"))
	c, _ := q.Counts(ctx)
	fmt.Println("paused:", c.Paused)
	// Output:
	// overview without credentials: 401
	// job page: 200 true
	// pause posted from another site: 403
	// pause from the dashboard: 303 ../../../queues/email?done=paused
	// paused: true
}
