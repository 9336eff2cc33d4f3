package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hopperq/hopper/dashboard"
	"github.com/hopperq/hopper/internal/demo"
	"github.com/hopperq/hopper/internal/redisurl"
	"github.com/redis/go-redis/v9"
)

func dashboardFlags(fs *flag.FlagSet, e *env) {
	fs.StringVar(&e.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.BoolVar(&e.readOnly, "read-only", false, "refuse every action (403)")
	fs.StringVar(&e.user, "user", "", "basic-auth user (with --password)")
	fs.StringVar(&e.password, "password", "", "basic-auth password (default $HOPPER_DASHBOARD_PASSWORD)")
	fs.BoolVar(&e.noAuth, "no-auth", false, "serve without authentication (required to do so on a non-loopback address)")
}

func demoFlags(fs *flag.FlagSet, e *env) {
	fs.StringVar(&e.addr, "addr", "127.0.0.1:8080", "listen address (loopback)")
	fs.DurationVar(&e.interval, "interval", 700*time.Millisecond, "how often the demo adds jobs")
}

// isLoopback reports whether addr (host:port) listens on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runDashboard(e *env, _ []string) error {
	opts := &dashboard.Options{Prefix: e.prefix, ReadOnly: e.readOnly, Logger: slog.New(slog.NewTextHandler(e.stderr, nil))}
	if e.password == "" {
		e.password = os.Getenv("HOPPER_DASHBOARD_PASSWORD")
	}
	switch {
	case e.user != "":
		if e.password == "" {
			return usagef("--user needs --password")
		}
		opts.Auth = dashboard.BasicAuth(e.user, e.password)
	case e.noAuth || isLoopback(e.addr):
		opts.Unauthenticated = true
	default:
		return usagef("%s is not a loopback address: set --user and --password, or --no-auth", e.addr)
	}
	h, err := dashboard.New(e.client, opts)
	if err != nil {
		return err
	}
	return serve(e, h, "hopper dashboard")
}

func runDemo(e *env, _ []string) error {
	if !isLoopback(e.addr) {
		return usagef("demo serves an unauthenticated dashboard: --addr must be a loopback address")
	}
	var client redis.UniversalClient
	where := e.redisURL
	if e.redisURL == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		client = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		where = "an embedded Redis (miniredis); set REDIS_URL to use yours"
	} else {
		var err error
		if client, err = redisurl.Client(e.redisURL); err != nil {
			return usagef("%v", err)
		}
	}
	defer client.Close()
	e.client = client
	if err := demo.Seed(e.ctx, client, e.prefix); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	demoDone := make(chan error, 1)
	go func() { demoDone <- demo.Run(ctx, client, e.prefix, e.interval, nil) }()
	fmt.Fprintf(e.stdout, "demo queues %v with live traffic on %s\n", demo.Queues, where)
	h, err := dashboard.New(client, &dashboard.Options{Prefix: e.prefix, Unauthenticated: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	serr := serve(e, h, "hopper demo")
	cancel()
	if derr := <-demoDone; derr != nil && !errors.Is(derr, context.Canceled) && serr == nil {
		return derr
	}
	return serr
}

// serve runs h on e.addr until e.ctx ends, then shuts down gracefully.
func serve(e *env, h http.Handler, what string) error {
	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stdout, "%s: open http://%s/ (Ctrl-C to stop)\n", what, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-e.ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}
