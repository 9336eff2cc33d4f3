// Package scripts holds hopper's Lua scripts, one per job state transition.
//
// Each .lua file starts with a header naming its KEYS, ARGV and return value.
// lib.lua is prepended to every script at init, so helpers are shared without
// a second round trip. All scripts take the same KEYS: every key of one queue
// (internal/keys), in one Cluster hash slot; no script builds a key name.
//
// Scripts avoid what miniredis lacks (#!lua flags, redis.setresp(3),
// cmsgpack, bit, struct) so the same code runs in unit tests and production.
package scripts

import (
	"context"
	"embed"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

//go:embed *.lua
var files embed.FS

// Script is one hopper transition script.
type Script struct {
	Name string
	Src  string // lib.lua + the script's own source
	*redis.Script
}

func load(name string) *Script {
	lib, err := files.ReadFile("lib.lua")
	if err != nil {
		panic(err)
	}
	own, err := files.ReadFile(name + ".lua")
	if err != nil {
		panic(err)
	}
	src := string(lib) + "\n" + string(own)
	return &Script{Name: name, Src: src, Script: redis.NewScript(src)}
}

// The scripts, by transition.
var (
	Add      = load("add")
	Fetch    = load("fetch")
	Complete = load("complete")
	Retry    = load("retry")
	Dead     = load("dead")
	Release  = load("release")
	Extend   = load("extend")
	Progress = load("progress")
	Promote  = load("promote")
	Recover  = load("recover")
	Get      = load("get")
	Counts   = load("counts")
	Remove   = load("remove")
	Pause    = load("pause")
	DLQRetry = load("dlq_retry")
	Clean    = load("clean")
	SchedSet = load("sched_set")
	SchedDel = load("sched_remove")
	SchedRun = load("sched_fire")
)

// All lists every script.
var All = []*Script{Add, Fetch, Complete, Retry, Dead, Release, Extend, Progress,
	Promote, Recover, Get, Counts, Remove, Pause, DLQRetry, Clean, SchedSet, SchedDel, SchedRun}

// Own returns the script's own source, without lib.lua.
func (s *Script) Own() string {
	b, _ := files.ReadFile(s.Name + ".lua")
	return string(b)
}

// Run runs the script by SHA and falls back to EVAL (which also caches the
// script) when the server answers NOSCRIPT, e.g. after a restart or SCRIPT
// FLUSH.
func (s *Script) Run(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	return s.Script.Run(ctx, c, keys, args...)
}

// IsNoScript reports whether err is Redis' NOSCRIPT error.
func IsNoScript(err error) bool {
	var re redis.Error
	return err != nil && errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOSCRIPT")
}

// LoadAll loads every script into the script cache of c (on a cluster, of
// every master), so that EVALSHA in a pipeline finds them.
func LoadAll(ctx context.Context, c redis.UniversalClient) error {
	load := func(ctx context.Context, c redis.Scripter) error {
		for _, s := range All {
			if err := s.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return load(ctx, m) })
	}
	return load(ctx, c)
}
