package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs every scenario once for hopper with tiny job counts against
// the server in HOPPER_TEST_REDIS_ADDR (database 15, which it flushes).
func TestSmoke(t *testing.T) {
	addr := os.Getenv("HOPPER_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("HOPPER_TEST_REDIS_ADDR not set: skipping the benchmark smoke run")
	}
	cfg, err := parseFlags([]string{"-systems", "hopper", "-scenarios", "all", "-runs", "1", "-short", "-n", "300",
		"-redis", addr, "-json", filepath.Join(t.TempDir(), "out.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), cfg, &out, io.Discard); err != nil {
		t.Fatalf("smoke run failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"versions:", "process-c50", "idle_cmds_per_s", "Targets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(cfg.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(scenarios) {
		t.Fatalf("got %d JSON lines, want %d", len(lines), len(scenarios))
	}
	for _, l := range lines {
		var r result
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Scenario == "" || r.System != "hopper" {
			t.Errorf("bad JSON line %q: %v", l, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-systems", "sidekiq"}); err == nil {
		t.Error("unknown system accepted")
	}
	if _, err := parseFlags([]string{"-scenarios", "nope"}); err == nil {
		t.Error("unknown scenario accepted")
	}
	cfg, err := parseFlags([]string{"-scenarios", "latency, idle"})
	if err != nil || len(cfg.scenarios) != 2 || cfg.scenarios[1].name != "idle" {
		t.Errorf("scenario list: %v %v", cfg.scenarios, err)
	}
}

func TestPayload(t *testing.T) {
	p := payload(1700000000123456789, 123456)
	if len(p) != payloadSize || !json.Valid(p) {
		t.Fatalf("payload %q: %d bytes, valid JSON %v", p, len(p), json.Valid(p))
	}
	if ts, err := payloadTS(p); err != nil || ts != 1700000000123456789 {
		t.Errorf("payloadTS = %d, %v", ts, err)
	}
}
