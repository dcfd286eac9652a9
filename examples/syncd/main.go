// Command syncd is a sync daemon built on secretsync: it runs the syncs
// declared in an HCL configuration file, by itself, and serves health,
// Prometheus metrics and a small JSON API.
//
//	syncd -config syncd.hcl          run every sync with auto-sync
//	syncd -config syncd.hcl -once    one round of every sync, a report, exit status
//	syncd -config syncd.hcl -plan    what a round would change, without applying
//
// A status record (in /v1/syncs) is pending (a round is scheduled, or keys
// changed during the last one and are read again), running, succeeded
// (every key written), conflicts (conflicts are flagged, waiting for a
// resolution) or failed; its message is one line.
//
// Sources and destinations are Vault KV v2 (so it can sync Vault to Vault)
// and dotenv files. Credentials come from files or environment variables
// named in the configuration; the configuration never holds a secret. See
// example.hcl.
//
// Signals: SIGHUP reloads the configuration (one that does not load or
// cannot be built is refused, logged with its cause, and the running one
// goes on untouched); SIGTERM and SIGINT let the rounds in flight finish
// and exit.
//
// HTTP (-listen, or listen in the file; default 127.0.0.1:8080):
//
//	GET  /healthz                          the process is up
//	GET  /readyz                           every auto-synced sync finished a round (whatever its outcome)
//	GET  /metrics                          Prometheus text format
//	GET  /v1/syncs                         syncs with their status records
//	POST /v1/syncs/{name}/trigger          a round now: 202 for an auto-synced sync; a manual
//	                                       one's report, 200, or 502 (409) with its error
//	GET  /v1/syncs/{name}/conflicts        flagged conflicts
//	POST /v1/syncs/{name}/conflicts/{key}  resolve: {"keep": "source"|"destination"}
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	gosync "sync"
	"syscall"
	"time"

	"github.com/secretsync/secretsync/sync"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// daemon holds the running generation, swapped on reload.
type daemon struct {
	path    string
	log     *slog.Logger
	metrics *metrics

	mu  gosync.Mutex
	gen *generation
}

func (d *daemon) current() *generation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// reload loads the file again; a bad configuration, or one that cannot be
// built, is refused and the running generation goes on.
func (d *daemon) reload(ctx context.Context) error {
	cfg, err := LoadConfig(d.path)
	if err != nil {
		return err
	}
	old := d.current()
	g, err := build(ctx, cfg, d.log, d.metrics, old)
	if err != nil {
		return err
	}
	old.stop(g)
	g.start(d.log)
	d.mu.Lock()
	d.gen = g
	d.mu.Unlock()
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run until ctx ends (or SIGTERM or SIGINT arrives).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("syncd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "syncd.hcl", "configuration `file` (HCL)")
	once := fs.Bool("once", false, "run every sync one round, print a report, and exit non-zero on a failure or a conflict")
	plan := fs.Bool("plan", false, "print what a round of every sync would change, without applying it")
	listen := fs.String("listen", "", "HTTP `address` (overrides listen in the file)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	// The daemon takes SIGHUP from here on: its default action would end
	// the process, also while the first configuration is being built.
	hup := make(chan os.Signal, 1)
	if !*once && !*plan {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "syncd: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := newMetrics()
	g, err := build(ctx, cfg, log, m, nil)
	if err != nil {
		fmt.Fprintf(stderr, "syncd: cannot run %s: %v\n", *path, err)
		return 1
	}
	if *once || *plan {
		defer g.close(nil)
		return runOnce(ctx, g, *plan, stdout, stderr)
	}

	d := &daemon{path: *path, log: log, metrics: m, gen: g}
	addr := cfg.Listen
	if *listen != "" {
		addr = *listen
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "syncd: %v\n", err)
		g.close(nil)
		return 1
	}
	srv := &http.Server{Handler: (&server{d: d}).routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http", "error", err)
		}
	}()
	log.Info("syncd started", "config", *path, "listen", ln.Addr().String(), "syncs", len(g.names))
	g.start(log)

	for {
		select {
		case <-hup:
			if err := d.reload(ctx); err != nil {
				log.Error("reload refused; the running configuration goes on", "config", *path, "error", err)
			} else {
				log.Info("configuration reloaded", "config", *path, "syncs", len(d.current().names))
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping: letting rounds in flight finish")
	d.current().stop(nil)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return 0
}

// runOnce runs (or plans) one round of every sync and prints the reports.
// It returns 1 when a sync failed, when any key failed (even in a round
// that returned no error), and, unless planning, when conflicts are
// flagged.
func runOnce(ctx context.Context, g *generation, plan bool, stdout, stderr io.Writer) int {
	code := 0
	for _, name := range g.names {
		s := g.syncs[name].syncer
		op := s.Run
		if plan {
			op = s.Plan
		}
		rep, err := op(ctx)
		fmt.Fprintf(stdout, "== %s\n", name)
		if rep != nil {
			_ = rep.WriteTable(stdout)
			if rep.Totals.Failed > 0 {
				code = 1
				if err == nil {
					fmt.Fprintf(stdout, "FAILED: %d keys failed\n", rep.Totals.Failed)
				}
			}
			if !plan && (rep.Totals.Conflicts > 0 || rep.Flagged > 0) {
				code = 1
			}
		}
		if err != nil {
			fmt.Fprintf(stdout, "FAILED: %s\n", sync.OneLine(err))
			code = 1
		}
	}
	return code
}
