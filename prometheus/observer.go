// Package hopperprom exports hopper metrics to Prometheus.
//
// It has two parts, both prometheus.Collectors:
//
//   - Observer is a hopper.JobObserver: set it as WorkerConfig.Observer and
//     it counts this process' attempts by outcome and times them
//     (hopper_jobs_*_total, hopper_job_duration_seconds, hopper_jobs_active).
//     These are process-local counters, as Prometheus expects: sum them over
//     your worker instances in queries.
//   - QueueCollector reads queue-wide state from Redis at scrape time through
//     hopper's public API: jobs per state, paused flag, age of the oldest
//     waiting job and live worker processes (hopper_queue_*). Register it in
//     one process only (or dedupe in queries): every instance reports the same
//     queue-wide values.
//
// Wiring both:
//
//	obs := hopperprom.NewObserver(nil)
//	qc, err := hopperprom.NewQueueCollector(rdb, nil) // every queue in the registry
//	prometheus.MustRegister(obs, qc)
//	w, err := hopper.NewWorker(rdb, "emails", h, &hopper.WorkerConfig{Observer: obs})
//	http.Handle("/metrics", promhttp.Handler())
//
// Label cardinality: metrics carry a queue label; the job name label is off
// by default (ObserverOptions.JobNameLabel) because job names are chosen by
// producers and may be many.
package hopperprom

import (
	"context"
	"errors"
	"time"

	"github.com/hopperq/hopper"
	"github.com/prometheus/client_golang/prometheus"
)

// ObserverOptions configures an Observer. The zero value is usable.
type ObserverOptions struct {
	// Namespace prefixes every metric name; default "hopper".
	Namespace string
	// JobNameLabel adds a "name" label (the job name) to every metric.
	// Only turn it on when job names are few and fixed.
	JobNameLabel bool
	// Buckets are the duration histogram's buckets in seconds; default
	// 5 ms to 10 min.
	Buckets []float64
}

// DefaultBuckets are the duration histogram's default buckets (seconds).
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Observer counts and times the attempts of the workers it is attached to.
// Safe for concurrent use; one Observer may serve several workers.
type Observer struct {
	names     bool
	started   *prometheus.CounterVec
	finished  *prometheus.CounterVec
	completed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	snoozed   *prometheus.CounterVec
	dead      *prometheus.CounterVec
	lost      *prometheus.CounterVec
	timedOut  *prometheus.CounterVec
	active    *prometheus.GaugeVec
	duration  *prometheus.HistogramVec
}

var _ hopper.JobObserver = (*Observer)(nil)

// NewObserver returns an Observer; opts may be nil.
func NewObserver(opts *ObserverOptions) *Observer {
	var o ObserverOptions
	if opts != nil {
		o = *opts
	}
	if o.Namespace == "" {
		o.Namespace = "hopper"
	}
	if len(o.Buckets) == 0 {
		o.Buckets = DefaultBuckets
	}
	labels := []string{"queue"}
	if o.JobNameLabel {
		labels = append(labels, "name")
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: o.Namespace, Name: name, Help: help}, labels)
	}
	return &Observer{
		names:     o.JobNameLabel,
		started:   counter("jobs_started_total", "Attempts started by this process."),
		finished:  counter("jobs_processed_total", "Attempts finished by this process, whatever their outcome."),
		completed: counter("jobs_completed_total", "Attempts that completed their job."),
		failed:    counter("jobs_failed_total", "Attempts that failed (then retried or dead-lettered)."),
		retried:   counter("jobs_retried_total", "Failed attempts whose job was scheduled for another attempt."),
		snoozed:   counter("jobs_snoozed_total", "Attempts that rescheduled their job without spending an attempt (RetryAfter)."),
		dead:      counter("jobs_dead_total", "Attempts that dead-lettered their job."),
		lost:      counter("jobs_lost_total", "Attempts whose outcome could not be recorded: the lease was lost or Redis failed."),
		timedOut:  counter("jobs_timed_out_total", "Attempts that ran past their job's timeout."),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: o.Namespace, Name: "jobs_active",
			Help: "Attempts running in this process now."}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: o.Namespace, Name: "job_duration_seconds",
			Help: "Handler run time of finished attempts, by the state the attempt left the job in.", Buckets: o.Buckets},
			append(append([]string{}, labels...), "outcome")),
	}
}

func (o *Observer) labels(job *hopper.Job) []string {
	if o.names {
		return []string{job.Queue, job.Name}
	}
	return []string{job.Queue}
}

// JobStarted implements hopper.JobObserver.
func (o *Observer) JobStarted(_ context.Context, job *hopper.Job) {
	l := o.labels(job)
	o.started.WithLabelValues(l...).Inc()
	o.active.WithLabelValues(l...).Inc()
}

// JobFinished implements hopper.JobObserver.
func (o *Observer) JobFinished(_ context.Context, job *hopper.Job, out hopper.Outcome) {
	l := o.labels(job)
	o.active.WithLabelValues(l...).Dec()
	o.finished.WithLabelValues(l...).Inc()
	outcome := string(out.State)
	switch {
	case !out.Recorded:
		outcome = "lost"
		o.lost.WithLabelValues(l...).Inc()
	case out.State == hopper.StateCompleted:
		o.completed.WithLabelValues(l...).Inc()
	case out.State == hopper.StateFailed:
		o.failed.WithLabelValues(l...).Inc()
		o.retried.WithLabelValues(l...).Inc()
	case out.State == hopper.StateDelayed:
		o.snoozed.WithLabelValues(l...).Inc()
	case out.State == hopper.StateDead:
		o.failed.WithLabelValues(l...).Inc()
		o.dead.WithLabelValues(l...).Inc()
	}
	if errors.Is(out.Err, hopper.ErrJobTimeout) {
		o.timedOut.WithLabelValues(l...).Inc()
	}
	o.duration.WithLabelValues(append(l, outcome)...).Observe(out.Duration.Seconds())
}

func (o *Observer) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.started, o.finished, o.completed, o.failed, o.retried, o.snoozed, o.dead,
		o.lost, o.timedOut, o.active, o.duration}
}

// Describe implements prometheus.Collector.
func (o *Observer) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range o.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (o *Observer) Collect(ch chan<- prometheus.Metric) {
	for _, c := range o.collectors() {
		c.Collect(ch)
	}
}

// seconds converts a duration to float seconds.
func seconds(d time.Duration) float64 { return d.Seconds() }
