package hopperprom

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hopperq/hopper"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// CollectorOptions configures a QueueCollector. The zero value is usable.
type CollectorOptions struct {
	// Prefix is the hopper key prefix; default hopper.DefaultPrefix.
	Prefix string
	// Queues fixes the queues to report; default: every queue in the
	// prefix's registry (hopper.ListQueues), read at each scrape.
	Queues []string
	// Namespace prefixes every metric name; default "hopper".
	Namespace string
	// Timeout bounds one scrape's Redis reads; default 5 s.
	Timeout time.Duration
	// MaxQueues bounds the queues one scrape reads; default 1,000.
	MaxQueues int
	// Logger receives scrape failures; default slog.Default().
	Logger *slog.Logger
}

// QueueCollector reports queue-wide state read from Redis at scrape time:
// one Stats call (a few round trips) per queue, up to 8 queues at a time.
// When a read fails the collector reports hopper_up 0 and counts the error
// in hopper_scrape_errors_total, and omits that queue's other metrics, so a
// dashboard shows a gap rather than stale numbers.
type QueueCollector struct {
	client redis.UniversalClient
	opts   CollectorOptions

	up, jobs, paused, oldest, workers *prometheus.Desc
	errs                              prometheus.Counter
}

// NewQueueCollector returns a collector for the queues under opts.Prefix;
// opts may be nil. It sends nothing to Redis until scraped.
func NewQueueCollector(client redis.UniversalClient, opts *CollectorOptions) (*QueueCollector, error) {
	var o CollectorOptions
	if opts != nil {
		o = *opts
	}
	if client == nil {
		return nil, fmt.Errorf("hopperprom: %w: nil client", hopper.ErrInvalid)
	}
	if o.Prefix == "" {
		o.Prefix = hopper.DefaultPrefix
	}
	if o.Namespace == "" {
		o.Namespace = "hopper"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxQueues <= 0 {
		o.MaxQueues = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	for _, name := range o.Queues {
		// NewQueue validates the name and the prefix without I/O.
		if _, err := hopper.NewQueue(client, name, &hopper.QueueConfig{Prefix: o.Prefix}); err != nil {
			return nil, fmt.Errorf("hopperprom: %w", err)
		}
	}
	ns := o.Namespace
	return &QueueCollector{
		client: client, opts: o,
		up: prometheus.NewDesc(ns+"_up", "1 if the last scrape read every queue's state from Redis, else 0.", nil, nil),
		jobs: prometheus.NewDesc(ns+"_queue_jobs", "Jobs in the queue per state (waiting includes jobs held by a pause).",
			[]string{"queue", "state"}, nil),
		paused: prometheus.NewDesc(ns+"_queue_paused", "1 if the queue is paused.", []string{"queue"}, nil),
		oldest: prometheus.NewDesc(ns+"_queue_oldest_waiting_seconds",
			"Age of the oldest waiting job without a priority (0 if none).", []string{"queue"}, nil),
		workers: prometheus.NewDesc(ns+"_queue_workers", "Live worker processes registered for the queue.",
			[]string{"queue"}, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "scrape_errors_total",
			Help: "Failed reads of queue state from Redis during scrapes."}),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.jobs
	ch <- c.paused
	ch <- c.oldest
	ch <- c.workers
	c.errs.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	ok := c.collect(ctx, ch)
	up := 0.0
	if ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	c.errs.Collect(ch)
}

func (c *QueueCollector) fail(what string, err error) {
	c.errs.Inc()
	c.opts.Logger.Warn("hopperprom: scrape failed", "what", what, "err", err)
}

func (c *QueueCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) bool {
	names := c.opts.Queues
	if names == nil {
		var err error
		if names, err = hopper.ListQueues(ctx, c.client, c.opts.Prefix); err != nil {
			c.fail("list queues", err)
			return false
		}
	}
	if len(names) > c.opts.MaxQueues {
		names = names[:c.opts.MaxQueues]
	}
	var (
		mu   sync.Mutex
		ok   = true
		wg   sync.WaitGroup
		sema = make(chan struct{}, 8)
	)
	for _, name := range names {
		wg.Add(1)
		sema <- struct{}{}
		go func() {
			defer func() { <-sema; wg.Done() }()
			q, err := hopper.NewQueue(c.client, name, &hopper.QueueConfig{Prefix: c.opts.Prefix})
			var st *hopper.Stats
			if err == nil {
				st, err = q.Stats(ctx)
			}
			if err != nil {
				c.fail("queue "+name, err)
				mu.Lock()
				ok = false
				mu.Unlock()
				return
			}
			for state, n := range map[hopper.State]int64{
				hopper.StateWaiting: st.Waiting, hopper.StateActive: st.Active, hopper.StateDelayed: st.Delayed,
				hopper.StateFailed: st.Failed, hopper.StateCompleted: st.Completed, hopper.StateDead: st.Dead,
			} {
				ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), name, string(state))
			}
			paused := 0.0
			if st.Paused {
				paused = 1
			}
			ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, name)
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, seconds(st.OldestWaiting), name)
			ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(len(st.Workers)), name)
		}()
	}
	wg.Wait()
	return ok
}
