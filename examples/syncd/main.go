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
	"strings"
	gosync "sync"
	"syscall"
	"time"

	// Root certificates for when the system has none, as in the
	// FROM-scratch image (Dockerfile): TLS to Vault and the cloud APIs
	// verifies against Mozilla's roots then. A system bundle, where there
	// is one, still wins.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/sync"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK        = 0 // done; with -check, the configuration is valid
	exitFailure   = 1 // a sync or a key failed, the configuration cannot be built, or -check found a problem
	exitUsage     = 2 // a bad flag or argument, or a configuration file that cannot be read or does not validate
	exitConflicts = 3 // -once or -plan: conflicts are flagged (or would be), and nothing failed
)

// daemon holds the running generation, swapped on reload.
type daemon struct {
	path    string
	log     *slog.Logger
	metrics *metrics

	mu  gosync.Mutex
	gen *generation

	reg *regService // nil without a registry block
	api *apiService // nil without an api block
}

// auditor sends each event to the running generation's auditor (the log,
// or the audit file), for the registry, which outlives generations.
func (d *daemon) auditor() audit.Auditor {
	return audit.AuditorFunc(func(ctx context.Context, e audit.Event) error {
		if g := d.current(); g != nil && g.auditor != nil {
			return g.auditor.Audit(ctx, e)
		}
		return nil
	})
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
	if old.cfg != nil {
		if err := registryUnchanged(old.cfg, cfg); err != nil {
			return err
		}
		if err := apiUnchanged(old.cfg, cfg); err != nil {
			return err
		}
		cfg.lock = old.cfg.lock // the state block is unchanged (registryUnchanged)
	}
	g, err := build(ctx, cfg, d.log, d.metrics, old)
	if err != nil {
		return err
	}
	old.stop(g)
	d.start(g)
	return nil
}

// start makes g the running generation: its syncs get their metrics, at 0
// until they run, and their watches start.
func (d *daemon) start(g *generation) {
	d.metrics.configure(g.names)
	g.start(d.log)
	d.mu.Lock()
	d.gen = g
	d.mu.Unlock()
}

// hangup handles SIGHUP: the audit file is opened again at its path (after
// log rotation moved it), then the configuration is reloaded.
func (d *daemon) hangup(ctx context.Context) {
	if a := d.current().audit; a != nil {
		if err := a.reopen(); err != nil {
			d.log.Error("audit file not opened again; events go on to the open one", "file", a.path, "error", err)
		} else {
			d.log.Info("audit file opened again", "file", a.path)
		}
	}
	if err := d.reload(ctx); err != nil {
		d.log.Error("reload refused; the running configuration goes on", "config", d.path, "error", err)
		return
	}
	d.log.Info("configuration reloaded", "config", d.path, "syncs", len(d.current().names))
}

func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run until ctx ends (or SIGTERM or SIGINT arrives).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if sub := subcommand(args[0]); sub != nil {
			return sub(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("syncd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "syncd.hcl", "configuration `file` (HCL)")
	once := fs.Bool("once", false, "run one round of every sync, print the reports, and exit: 0 clean, 1 failure, 3 conflicts flagged")
	plan := fs.Bool("plan", false, "print what a round of every sync would change, without applying it, and exit as -once does")
	check := fs.Bool("check", false, "validate the configuration offline (no request to Vault) and exit: 0 valid, 1 not")
	showVersion := fs.Bool("version", false, "print the version, the commit when known, and the Go version, and exit")
	listen := fs.String("listen", "", "HTTP `address` (overrides listen in the file)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: syncd [-config file] [-listen address | -once | -plan | -check | -version]\n")
		fmt.Fprintf(fs.Output(), "       syncd status|conflicts|resolve|trigger|plan|destinations|associations [-addr address | -config file] [-token-file file] [-json] [arguments]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nexit status: 0 clean, 1 failure, 2 usage, 3 conflicts flagged (-once, -plan)\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		if subcommand(fs.Arg(0)) != nil {
			fmt.Fprintf(stderr, "syncd: unexpected argument %q (a subcommand comes first: syncd %s -config file)\n", fs.Arg(0), fs.Arg(0))
		} else {
			fmt.Fprintf(stderr, "syncd: unexpected argument %q\n", fs.Arg(0))
		}
		fs.Usage()
		return exitUsage
	}
	if *showVersion {
		readBuildInfo().write(stdout)
		return exitOK
	}
	modes := 0
	for _, b := range []bool{*once, *plan, *check} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		fmt.Fprintln(stderr, "syncd: -once, -plan and -check exclude each other")
		return exitUsage
	}
	if *check {
		if _, err := checkConfig(ctx, *path); err != nil {
			for _, l := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(stderr, "syncd: %s: %s\n", *path, l)
			}
			return exitFailure
		}
		fmt.Fprintf(stdout, "syncd: %s: valid (checked offline: Vault was not contacted)\n", *path)
		return exitOK
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
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m := newMetrics()
	d := &daemon{path: *path, log: log, metrics: m}
	if !*once && !*plan && cfg.Registry != nil && cfg.State != nil && cfg.State.File == "" {
		cfg.lock, err = openProcessLock(ctx, cfg, log, d.auditor())
		if err != nil {
			fmt.Fprintf(stderr, "syncd: cannot run %s: %v\n", *path, err)
			return exitFailure
		}
		defer cfg.lock.close()
	}
	g, err := build(ctx, cfg, log, m, nil)
	if err != nil {
		fmt.Fprintf(stderr, "syncd: cannot run %s: %v\n", *path, err)
		return exitFailure
	}
	if *once || *plan {
		defer g.close(nil)
		return runOnce(ctx, g, *plan, stdout, stderr)
	}

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
		return exitFailure
	}
	srv := &http.Server{Handler: (&server{d: d}).routes(), ReadHeaderTimeout: 10 * time.Second}
	d.start(g)
	if cfg.Registry != nil {
		d.reg, err = startRegistry(ctx, cfg, g, log, d.auditor())
		if err != nil {
			fmt.Fprintf(stderr, "syncd: cannot run %s: %v\n", *path, err)
			d.current().stop(nil)
			ln.Close()
			return exitFailure
		}
		log.Info("registry started", "destinations", len(cfg.Registry.Destinations), "associations", len(cfg.Registry.Associations))
	}
	d.api, err = startAPI(cfg, d, log)
	if err != nil {
		fmt.Fprintf(stderr, "syncd: cannot run %s: %v\n", *path, err)
		if d.reg != nil {
			d.reg.stop()
		}
		d.current().stop(nil)
		ln.Close()
		return exitFailure
	}
	if d.api != nil {
		log.Info("api started", "listen", apiAddr(d.api))
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http", "error", err)
		}
	}()
	log.Info("syncd started", "config", *path, "listen", ln.Addr().String(), "syncs", len(g.names), "version", readBuildInfo().Version)

	for {
		select {
		case <-hup:
			d.hangup(ctx)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping: letting rounds in flight finish")
	d.api.stop()
	if d.reg != nil {
		d.reg.stop()
	}
	d.current().stop(nil)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return exitOK
}

// runOnce runs (or plans) one round of every sync and prints the reports.
// It returns exitFailure when a sync failed or any key failed (even in a
// round that returned no error); otherwise exitConflicts when conflicts
// are flagged (in a plan: when the round would flag some); otherwise exitOK.
func runOnce(ctx context.Context, g *generation, plan bool, stdout, stderr io.Writer) int {
	var anyFailed, anyConflict bool
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
				anyFailed = true
				if err == nil {
					fmt.Fprintf(stdout, "FAILED: %d keys failed\n", rep.Totals.Failed)
				}
			}
			if n := max(rep.Flagged, rep.Totals.Conflicts); n > 0 {
				anyConflict = true
				if plan {
					fmt.Fprintf(stdout, "CONFLICTS: %d keys would be flagged\n", n)
				} else {
					fmt.Fprintf(stdout, "CONFLICTS: %d flagged, waiting for a resolution\n", n)
				}
			}
		}
		if err != nil {
			fmt.Fprintf(stdout, "FAILED: %s\n", sync.OneLine(err))
			anyFailed = true
		}
	}
	switch {
	case anyFailed:
		return exitFailure
	case anyConflict:
		return exitConflicts
	}
	return exitOK
}

// apiAddr is the address the API listens on, "" without one.
func apiAddr(s *apiService) string {
	if s == nil {
		return ""
	}
	return s.addr.String()
}
