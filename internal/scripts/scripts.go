// Package scripts holds hopper's Lua scripts, one per job state transition.
//
// Each .lua file starts with a header naming its KEYS, ARGV and return value.
// At init every script is linked with the helpers of lib.lua it uses: it
// gets only those helper blocks, and a K table naming only the queue keys it
// touches, passed as KEYS in internal/keys order (Script.Parts). Every key
// of one queue shares a Cluster hash slot; no script builds a key name.
//
// Scripts avoid what miniredis lacks (#!lua flags, redis.setresp(3),
// cmsgpack, bit, struct) so the same code runs in unit tests and production.
package scripts

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hopperq/hopper/internal/keys"
	"github.com/redis/go-redis/v9"
)

//go:embed *.lua
var files embed.FS

// Script is one hopper transition script, linked.
type Script struct {
	Name string
	// Src is the linked source: the K table, the helper blocks used, then
	// the script's own source.
	Src string
	// Parts lists the keys.* parts the script takes as KEYS, in order.
	Parts []int
	*redis.Script
}

// block is one helper of lib.lua: a blank-line separated definition.
type block struct {
	name string
	src  string
	deps []string
}

var (
	blockName = regexp.MustCompile(`(?m)^local (?:function )?(\w+)`)
	kRef      = regexp.MustCompile(`\bK\.(\w+)`)
	libBlocks = parseLib()
)

// Lib returns lib.lua's source.
func Lib() string {
	b, err := files.ReadFile("lib.lua")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func parseLib() []block {
	var out []block
	for _, chunk := range strings.Split(Lib(), "\n\n") {
		m := blockName.FindStringSubmatch(chunk)
		if m == nil {
			continue // the file's header comment
		}
		out = append(out, block{name: m[1], src: strings.TrimSpace(chunk)})
	}
	for i := range out {
		body := strings.Replace(out[i].src, "local function "+out[i].name, "", 1)
		for _, o := range out {
			if o.name != out[i].name && uses(body, o.name) {
				out[i].deps = append(out[i].deps, o.name)
			}
		}
	}
	return out
}

func uses(src, name string) bool {
	return regexp.MustCompile(`\b` + name + `\b`).MatchString(stripComments(src))
}

func stripComments(src string) string {
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if j := strings.Index(l, "--"); j >= 0 {
			lines[i] = l[:j]
		}
	}
	return strings.Join(lines, "\n")
}

func load(name string) *Script {
	ownB, err := files.ReadFile(name + ".lua")
	if err != nil {
		panic(err)
	}
	own := string(ownB)
	need := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if need[n] {
			return
		}
		need[n] = true
		for _, b := range libBlocks {
			if b.name == n {
				for _, d := range b.deps {
					visit(d)
				}
			}
		}
	}
	for _, b := range libBlocks {
		if uses(own, b.name) {
			visit(b.name)
		}
	}
	var helpers []string
	for _, b := range libBlocks {
		if need[b.name] {
			helpers = append(helpers, b.src)
		}
	}
	body := strings.Join(helpers, "\n") + "\n" + own
	parts := map[int]bool{}
	for _, m := range kRef.FindAllStringSubmatch(stripComments(body), -1) {
		p := partIndex(m[1])
		if p < 0 {
			panic(fmt.Sprintf("scripts: %s references unknown key part K.%s", name, m[1]))
		}
		parts[p] = true
	}
	s := &Script{Name: name}
	for p := range parts {
		s.Parts = append(s.Parts, p)
	}
	sort.Ints(s.Parts)
	var kt strings.Builder
	kt.WriteString("local K = {")
	for i, p := range s.Parts {
		fmt.Fprintf(&kt, " %s = KEYS[%d],", keys.PartName(p), i+1)
	}
	kt.WriteString(" }\n")
	s.Src = kt.String() + body
	s.Script = redis.NewScript(s.Src)
	return s
}

func partIndex(name string) int {
	for p := range keys.NumParts {
		if keys.PartName(p) == name {
			return p
		}
	}
	return -1
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
	Requeue  = load("requeue")
	Clean    = load("clean")
	SchedSet = load("sched_set")
	SchedDel = load("sched_remove")
	SchedRun = load("sched_fire")
	Drain    = load("drain")
	Log      = load("log")
	Oblit    = load("obliterate")
)

// All lists every script.
var All = []*Script{Add, Fetch, Complete, Retry, Dead, Release, Extend, Progress,
	Promote, Recover, Get, Counts, Remove, Pause, Requeue, Clean, SchedSet, SchedDel, SchedRun, Drain, Log, Oblit}

// Own returns the script's own source, without the linked helpers.
func (s *Script) Own() string {
	b, _ := files.ReadFile(s.Name + ".lua")
	return string(b)
}

// Keys returns the script's KEYS for a queue: the queue's key names of
// s.Parts, in order.
func (s *Script) Keys(q keys.Queue) []string {
	out := make([]string, len(s.Parts))
	for i, p := range s.Parts {
		out[i] = q.Key(p)
	}
	return out
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
