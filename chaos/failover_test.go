//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hopperq/hopper"
	"github.com/hopperq/hopper/internal/faultproxy"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// 10. Primary + replica, failover. With QueueConfig.WaitReplicas = 1 every
// add acknowledged with nil survives the failover to the replica and
// completes; without it the adds the replica never received are lost —
// counted, reported, and asserted to exist (the fault is real), all of them
// acknowledged after replication stopped. In both, no job is stuck active
// after the failover and the history checker holds over the jobs the new
// primary knows.
func TestFailoverWaitReplicas(t *testing.T) {
	r := failover(t, 1)
	t.Logf("WaitReplicas=1: %d adds acknowledged, %d lost; %d answered ErrNotReplicated while replication was cut; %d completions the replica missed ran again",
		r.acked, len(r.lost), r.notReplicated, len(r.rerun))
	require.Empty(t, r.lost, "an add acknowledged with WaitReplicas must survive the failover")
	require.Positive(t, r.notReplicated, "adds while replication was cut must report ErrNotReplicated")
}

func TestFailoverWithoutWait(t *testing.T) {
	r := failover(t, 0)
	t.Logf("WaitReplicas=0: %d adds acknowledged, %d lost in the failover (all acknowledged within %s before the kill); %d completions the replica missed ran again",
		r.acked, len(r.lost), r.lostWindow.Round(time.Millisecond), len(r.rerun))
	require.NotEmpty(t, r.lost, "the control run must lose the adds the replica never received")
	require.Zero(t, r.notReplicated)
}

type failoverResult struct {
	acked         int
	notReplicated int                  // adds answered with ErrNotReplicated
	lost          map[string]time.Time // acknowledged adds the new primary does not have
	lostWindow    time.Duration        // the earliest lost add's acknowledgement before the kill
	rerun         map[string]time.Time // completions the new primary never learned of
}

// failover runs a producer and two worker processes against primary P with
// replica R (replication through a fault proxy), cuts replication for
// 500 ms under load, kills P, promotes R and points the clients' proxy at
// it, then checks what R holds.
func failover(t *testing.T, waitReplicas int) failoverResult {
	ctx := context.Background()
	primary := startRedis(t)
	replica := startRedis(t)
	repl, err := faultproxy.New(primary.addr())
	require.NoError(t, err)
	defer repl.Close()
	front, err := faultproxy.New(primary.addr()) // what clients and workers dial
	require.NoError(t, err)
	defer front.Close()

	rc := redis.NewClient(&redis.Options{Addr: replica.addr()})
	defer rc.Close()
	host, port, _ := strings.Cut(repl.Addr(), ":")
	require.NoError(t, rc.Do(ctx, "REPLICAOF", host, port).Err())
	waitFor(t, 10*time.Second, "the replica in sync", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0")
	})

	c := redis.NewClient(&redis.Options{Addr: front.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: time.Second})
	defer c.Close()
	e := &env{t: t, redis: primary, client: c, prefix: newPrefix(t.Name()), history: filepath.Join(t.TempDir(), "history.jsonl")}
	e.q, err = hopper.NewQueue(c, "work", &hopper.QueueConfig{Prefix: e.prefix, KeepCompleted: &hopper.Retention{Count: 1_000_000},
		WaitReplicas: waitReplicas, WaitTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	var pids []int
	for i := range 2 {
		spec := e.spec(fmt.Sprint("w", i), 4)
		spec.Addr = front.Addr()
		pids = append(pids, startWorker(t, spec).cmd.Process.Pid)
	}

	prod := startProducer(e.q, "p", 20, time.Millisecond, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	repl.Hold() // replication stops: the replica falls behind
	held := time.Now()
	time.Sleep(500 * time.Millisecond)
	primary.kill()
	killed := time.Now()
	repl.Close()
	require.NoError(t, rc.Do(ctx, "REPLICAOF", "NO", "ONE").Err())
	front.Retarget(replica.addr())
	promoted := time.Now()
	time.Sleep(1500 * time.Millisecond) // load on the new primary
	prod.finish()
	acked, ackedAt := prod.acked, prod.ackedAt
	notReplicated := 0
	for _, err := range prod.failed {
		if errors.Is(err, hopper.ErrNotReplicated) {
			notReplicated++
		}
	}
	t.Logf("replication cut %s before the kill; promoted %s after it; %d adds acknowledged of %d attempted",
		killed.Sub(held).Round(time.Millisecond), promoted.Sub(killed).Round(time.Millisecond), len(acked), len(prod.attempted))

	// Read the new primary directly.
	qr, err := hopper.NewQueue(rc, "work", &hopper.QueueConfig{Prefix: e.prefix})
	require.NoError(t, err)
	res := failoverResult{acked: len(acked), notReplicated: notReplicated, lost: map[string]time.Time{}, rerun: map[string]time.Time{}}
	var survivors []string
	for _, id := range acked {
		if _, err := qr.Job(ctx, id); errors.Is(err, hopper.ErrJobNotFound) {
			res.lost[id] = ackedAt[id]
			res.lostWindow = max(res.lostWindow, killed.Sub(ackedAt[id]))
			// Only what the replica could not have received is lost: adds
			// acknowledged after replication stopped (plus the moment
			// replication lags behind a reply).
			require.True(t, ackedAt[id].After(held.Add(-100*time.Millisecond)),
				"add %s acknowledged %s before replication was cut is lost", id, held.Sub(ackedAt[id]))
			continue
		} else {
			require.NoError(t, err)
		}
		survivors = append(survivors, id)
	}
	waitFor(t, 30*time.Second, "every surviving add completes and nothing is left active", func() bool {
		cnt, err := qr.Counts(ctx)
		require.NoError(t, err)
		return cnt.Waiting+cnt.Active+cnt.Delayed+cnt.Failed == 0
	})

	// A completion recorded twice: the first went to the old primary after
	// replication stopped, and the job ran again from the replica's state.
	// Redis lost that write, not a race of ours, so it must fall inside the
	// cut; such jobs are checked apart from I2/I3.
	_, ends := readHistory(t, e.history)
	completions := map[string][]time.Time{}
	for _, l := range ends {
		if l.Recorded && l.State == string(hopper.StateCompleted) {
			completions[l.Job] = append(completions[l.Job], l.End)
		}
	}
	for id, at := range completions {
		if len(at) > 1 {
			first := at[0]
			for _, x := range at[1:] {
				if x.Before(first) {
					first = x
				}
			}
			require.True(t, first.After(held.Add(-100*time.Millisecond)) && first.Before(promoted),
				"job %s completed twice, the first time outside the replication cut (%s)", id, first)
			res.rerun[id] = first
		}
	}
	// Adds that returned an error may have landed: then they count as added.
	all := make([]string, 0, len(survivors))
	for _, id := range survivors {
		if _, ok := res.rerun[id]; !ok {
			all = append(all, id)
		}
	}
	all = append(all, prod.landed(t, qr, res.rerun)...)
	// Every start before the promotion ran through the failover: a fault.
	faults := map[int]time.Time{}
	for _, pid := range pids {
		faults[pid] = promoted
	}
	o := collect(t, qr, all, e.history, faults)
	o.counts.Completed -= int64(len(res.rerun))
	require.Empty(t, check(o))
	return res
}
