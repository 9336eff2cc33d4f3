package hopperprom_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	hopperprom "github.com/hopperq/hopper/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// Attach an Observer to a worker and a QueueCollector to the registry, then
// serve the registry (promhttp.HandlerFor) on /metrics. Here the registry
// is read directly.
func Example() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	obs := hopperprom.NewObserver(nil)
	qc, err := hopperprom.NewQueueCollector(rdb, &hopperprom.CollectorOptions{Logger: quiet})
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(obs, qc)

	q, _ := hopper.NewQueue(rdb, "thumbnails", nil)
	w, _ := hopper.NewWorker(rdb, "thumbnails", hopper.HandlerFunc(func(context.Context, *hopper.Job) error {
		return nil
	}), &hopper.WorkerConfig{Observer: obs, Logger: quiet})
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	for range 3 {
		j, _ := q.Add(ctx, "resize", nil, nil)
		_, _ = q.Wait(ctx, j.ID)
	}
	_ = w.Close()
	<-stopped

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hopper_jobs_completed_total Attempts that completed their job.
# TYPE hopper_jobs_completed_total counter
hopper_jobs_completed_total{queue="thumbnails"} 3
`), "hopper_jobs_completed_total")
	fmt.Println("completed counter matches:", err == nil)
	fmt.Println("queue metrics:", testutil.CollectAndCount(qc, "hopper_queue_jobs"))
	// Output:
	// completed counter matches: true
	// queue metrics: 6
}
