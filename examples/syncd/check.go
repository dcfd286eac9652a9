package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/dotenv"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

// checkConfig validates the configuration at path as -check does, offline:
// it never contacts Vault, takes no lock and writes nothing, so it can
// check the file of a daemon that is running (which holds the state file).
// Beyond what LoadConfig validates, it
//
//   - builds each connection's client, which reads its TLS files, and
//     reads its credential (the token or secret_id file must be readable
//     and not empty; the environment variable set and not empty);
//   - opens and parses each dotenv side (a missing file is fine, as at
//     run time, when its directory exists);
//   - builds each sync with the engine, a Vault side stood in for by an
//     in-memory one, which checks its mode, initial sync and key schema
//     together;
//   - reads the credentials of each declared external destination from
//     their files and variables and validates its config, and checks
//     that a configuration file holding a credential itself is mode
//     0600;
//   - checks that the directories of the state file and the audit file
//     exist, and that listen is a host:port;
//   - reads the api block's token file (it must not be empty) and its TLS
//     certificate and key.
//
// It does not check that Vault can be reached, that the credentials are
// accepted, that the mounts exist, or what the policies allow: the daemon
// does that when it starts (or reloads), and refuses a configuration that
// fails there.
//
// The error lists every problem found, one per line.
func checkConfig(ctx context.Context, path string) (*Config, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if cfg.Listen != "" {
		if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
			bad("listen %q: %v", cfg.Listen, err)
		}
	}
	for i := range cfg.Connections {
		cc := &cfg.Connections[i]
		if c, err := connection.New(ctx, connConfig(cc), &connection.Options{Name: cc.Name}); err != nil {
			bad("connection %q: %v", cc.Name, err)
		} else {
			_ = c.Close(ctx) // it has no token: nothing to revoke
		}
		var file, env string
		if a := cc.AppRole; a != nil {
			file, env = a.SecretIDFile, a.SecretIDEnv
		} else {
			file, env = cc.Token.File, cc.Token.Env
		}
		if err := checkCredential(file, env); err != nil {
			bad("connection %q: %v", cc.Name, err)
		}
	}
	if st := cfg.State; st != nil && st.File != "" {
		if err := checkDir(st.File); err != nil {
			bad("state: file %s: %v", st.File, err)
		}
	}
	if a := cfg.Audit; a != nil {
		if err := checkDir(a.File); err != nil {
			bad("audit: file %s: %v", a.File, err)
		}
	}
	if a := cfg.api(); a != nil {
		if err := checkCredential(a.TokenFile, ""); err != nil {
			bad("%s: token_file: %v", cfg.apiLabel(), err)
		}
		if a.TLSCert != "" {
			if _, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey); err != nil {
				bad("%s: tls_cert and tls_key: %v", cfg.apiLabel(), err)
			}
		}
	}
	if rc := cfg.Registry; rc != nil {
		// With the state (and so the catalog) in Vault and no transit
		// block, a credential could not be kept sealed: the start would
		// fail. A registry over an in-memory catalog, with no sealer,
		// tells which.
		var unsealed *registry.Registry
		if st := cfg.State; st != nil && st.File == "" && rc.Transit == nil {
			unsealed = registry.New(&registry.Options{Catalog: state.NewMemory()})
		}
		for _, d := range rc.Destinations {
			dc, err := declaredConfig(rc, d)
			if err != nil {
				bad("registry: destination %s/%s: %v", d.Type, d.Name, err)
				continue
			}
			if unsealed != nil {
				if _, err := unsealed.Put(ctx, d.Name, dc); errors.Is(err, registry.ErrNoSealer) {
					bad("registry: destination %s/%s holds a credential, which the catalog in Vault keeps only sealed: give the registry block a transit block", d.Type, d.Name)
				}
			}
		}
		if err := checkLiteralCredentials(cfg); err != nil {
			bad("registry: %v", err)
		}
	}
	for i := range cfg.Syncs {
		sc := &cfg.Syncs[i]
		src, err := offlineSide(sc.Source)
		if err != nil {
			bad("sync %q: source: %v", sc.Name, err)
			continue
		}
		dst, err := offlineSide(sc.Destination)
		if err != nil {
			bad("sync %q: destination: %v", sc.Name, err)
			continue
		}
		if _, err := sync.New(syncConfig(sc, cfg.parsed[sc.Name], src, dst)); err != nil {
			bad("sync %q: %v", sc.Name, err)
		}
	}
	return cfg, errors.Join(errs...)
}

// offlineSide opens a dotenv side, which needs no network, and stands in
// for a Vault side with an in-memory destination.
func offlineSide(s SideConfig) (destination.Destination, error) {
	if d := s.Dotenv; d != nil {
		return dotenv.Open(d.Path, &dotenv.Options{CreateIfMissing: true})
	}
	return memory.New(nil), nil
}

// checkCredential checks that a credential file is readable and not empty,
// or that an environment variable is set and not empty. It never shows the
// credential.
func checkCredential(file, env string) error {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("credential file %s: %w", file, err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return fmt.Errorf("credential file %s is empty", file)
		}
		return nil
	}
	if strings.TrimSpace(os.Getenv(env)) == "" {
		return fmt.Errorf("credential variable %s is empty or unset", env)
	}
	return nil
}

// checkDir checks that the directory of the file at path exists.
func checkDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
