package hopper_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper"
	"github.com/redis/go-redis/v9"
)

// A Queue is the producer's handle: it adds jobs and reads them back. It
// needs only a Redis client; no worker has to run for jobs to be added.
func Example_queue() {
	ctx := context.Background()
	mr, err := miniredis.Run() // any Redis 7 works; an embedded one here
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	q, err := hopper.NewQueue(rdb, "email", nil) // nil: the default QueueConfig
	if err != nil {
		panic(err)
	}

	// A job is a name (handlers route by it) and a payload of bytes.
	job, err := q.Add(ctx, "welcome", []byte(`{"to":"ada@example.com"}`),
		&hopper.JobOptions{ID: "welcome-ada", Attempts: 3})
	if err != nil {
		panic(err)
	}
	fmt.Println("added", job.ID, "as", job.State)

	// A delayed job waits in the delayed set until it is due.
	later, err := q.AddJSON(ctx, "reminder", map[string]string{"to": "ada@example.com"},
		&hopper.JobOptions{ID: "remind-ada", Delay: 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	fmt.Println("added", later.ID, "as", later.State)

	// Job returns a snapshot: state, attempts, payload, result, last error.
	j, err := q.Job(ctx, "welcome-ada")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %s, %d of %d attempts made, payload %s\n", j.ID, j.State, j.AttemptsMade, j.MaxAttempts, j.Payload)

	counts, err := q.Counts(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("waiting %d, delayed %d, active %d, completed %d, dead %d\n",
		counts.Waiting, counts.Delayed, counts.Active, counts.Completed, counts.Dead)

	_, err = q.Job(ctx, "no-such-job")
	fmt.Println("unknown job:", errors.Is(err, hopper.ErrJobNotFound))
	// Output:
	// added welcome-ada as waiting
	// added remind-ada as delayed
	// welcome-ada: waiting, 0 of 3 attempts made, payload {"to":"ada@example.com"}
	// waiting 1, delayed 1, active 0, completed 0, dead 0
	// unknown job: true
}

// Setting JobOptions.ID makes Add idempotent: while a job with that ID
// exists, adding it again adds nothing and returns the existing job with
// Duplicate set. A producer that is unsure whether its Add went through
// (a timeout, a crash, a redelivered message) can simply add again.
func ExampleQueue_Add() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	q, err := hopper.NewQueue(rdb, "billing", nil)
	if err != nil {
		panic(err)
	}

	first, err := q.Add(ctx, "invoice", []byte("order 42"), &hopper.JobOptions{ID: "invoice-order-42"})
	if err != nil {
		panic(err)
	}
	fmt.Println(first.ID, first.State, "duplicate:", first.Duplicate)

	again, err := q.Add(ctx, "invoice", []byte("order 42, sent twice"), &hopper.JobOptions{ID: "invoice-order-42"})
	if err != nil {
		panic(err)
	}
	// The returned job is the existing one, with its original payload.
	fmt.Println(again.ID, again.State, "duplicate:", again.Duplicate, "payload:", string(again.Payload))

	counts, err := q.Counts(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("jobs waiting:", counts.Waiting)
	// Output:
	// invoice-order-42 waiting duplicate: false
	// invoice-order-42 waiting duplicate: true payload: order 42
	// jobs waiting: 1
}

// AddBulk adds many jobs in one round trip, atomically: all of them or
// none. IDs already present, or repeated within the batch, come back as
// duplicates.
func ExampleQueue_AddBulk() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	q, err := hopper.NewQueue(rdb, "thumbnails", nil)
	if err != nil {
		panic(err)
	}

	jobs, err := q.AddBulk(ctx, []hopper.NewJob{
		{Name: "resize", Payload: []byte("a.png"), Options: &hopper.JobOptions{ID: "resize-a"}},
		{Name: "resize", Payload: []byte("b.png"), Options: &hopper.JobOptions{ID: "resize-b", Priority: 5}},
		{Name: "resize", Payload: []byte("a.png"), Options: &hopper.JobOptions{ID: "resize-a"}},
	})
	if err != nil {
		panic(err)
	}
	for _, j := range jobs {
		fmt.Println(j.ID, j.State, "duplicate:", j.Duplicate)
	}
	// Output:
	// resize-a waiting duplicate: false
	// resize-b waiting duplicate: false
	// resize-a waiting duplicate: true
}

// With QueueConfig.WaitReplicas an add returns nil only once that many
// replicas have the job, so it survives a failover. The embedded Redis here
// has no replica, so the add reports ErrNotReplicated — beside the job,
// which the primary holds: adding it again with the same ID is safe.
func ExampleQueueConfig_waitReplicas() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	durable, err := hopper.NewQueue(rdb, "payments", &hopper.QueueConfig{
		WaitReplicas: 1, WaitTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}

	job, err := durable.Add(ctx, "capture", []byte(`{"order":42}`), &hopper.JobOptions{ID: "capture-42"})
	switch {
	case errors.Is(err, hopper.ErrNotReplicated):
		fmt.Println("not replicated yet; on the primary:", job.ID, job.State)
	case err != nil:
		panic(err)
	default:
		fmt.Println("replicated:", job.ID)
	}
	// Output:
	// not replicated yet; on the primary: capture-42 waiting
}
