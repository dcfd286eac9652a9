package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"time"

	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
	"github.com/secretsync/secretsync/sync"
)

// apiService serves the daemon's API (package httpapi) on the api block's
// listener: the sync resources of the running generation's syncs and,
// with a registry, Vault's /sys/sync API and the syncs of the registry's
// associations. Every request needs the token of the api block's
// token_file, and passes httpapi's Host and Origin guard; trigger and
// resolve are audited with who made them. It is built once, at start, and
// outlives reloads (the api block cannot change on reload).
type apiService struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// daemonSyncs are the syncs of the daemon's running generation, for
// httpapi: a reload changes them for the next request.
type daemonSyncs struct{ d *daemon }

// SyncNames returns the names of the running generation's syncs.
func (s daemonSyncs) SyncNames(context.Context) ([]string, error) {
	return slices.Clone(s.d.current().names), nil
}

// Syncer returns the running generation's sync named name, or nil.
func (s daemonSyncs) Syncer(_ context.Context, name string) (*sync.Syncer, error) {
	if m := s.d.current().syncs[name]; m != nil {
		return m.syncer, nil
	}
	return nil, nil
}

// apiHandler returns the API's handler over d's syncs and registry (nil
// without a registry block), with the token of a's token_file.
func apiHandler(d *daemon, a *APIConfig) (http.Handler, error) {
	opts := httpapi.Options{
		TokenFile: a.TokenFile, Hosts: a.Hosts, Auditor: d.auditor(), Syncs: daemonSyncs{d},
	}
	var reg *registry.Registry
	if d.reg != nil {
		reg = d.reg.reg
		opts.RegistrySyncs = true
		opts.Accessor = accessors(d.reg.conn)
	}
	return httpapi.New(reg, &opts)
}

// startAPI serves the API of cfg's api block; it returns nil, nil without
// one.
func startAPI(cfg *Config, d *daemon, log *slog.Logger) (*apiService, error) {
	a := cfg.api()
	if a == nil {
		return nil, nil
	}
	label := cfg.apiLabel()
	var tlsCfg *tls.Config
	if a.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	h, err := apiHandler(d, a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	ln, err := httpapi.Listen(cmp.Or(a.Listen, defaultAPIListen), tlsCfg, a.AllowPlaintextNonLoopback)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	s := &apiService{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, addr: ln.Addr(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api", "error", err)
		}
	}()
	return s, nil
}

// stop ends the API server; requests in flight get 5 seconds.
func (s *apiService) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// apiUnchanged reports why next cannot replace cur on reload: the api
// block (its listener, token file, TLS and hosts) takes a restart. It
// returns nil when it did not change.
func apiUnchanged(cur, next *Config) error {
	if !reflect.DeepEqual(cur.api(), next.api()) {
		return errors.New("api: the api block cannot change on reload; restart syncd")
	}
	return nil
}
