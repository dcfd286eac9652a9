package vaultkv

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// PolicySpec describes what a process does with Vault through this
// package, for Policy: its KV sides and its state stores.
type PolicySpec struct {
	// KV lists the KV sides of the syncs (each KV made with New).
	KV []KVAccess
	// Stores lists the state stores (each Store made with NewStore).
	Stores []StoreAccess
	// Transit lists the Transit keys that seal state files' fingerprint
	// keys (each Transit made with NewTransit).
	Transit []TransitAccess
}

// TransitAccess is one Transit sealer in a PolicySpec.
type TransitAccess struct {
	// Options are the sealer's options, as given to NewTransit.
	Options TransitOptions
	// Rewrap says that state.File.RewrapKey is used after the Transit key
	// is rotated.
	Rewrap bool
}

// KVAccess is one KV side in a PolicySpec.
type KVAccess struct {
	// Options are the side's Options, as given to New. Mount, Path,
	// Layout, Destroy and DeleteMetadata decide the policy; the other
	// fields do not.
	Options Options
	// Version is the KV version of the mount: 1 for KV v1, 0 or 2 for KV
	// v2 (KV.KVVersion reports it). KV v1 paths have no data/ or
	// metadata/ segment.
	Version int
	// Write says that the side is written (KV.Apply): it is the
	// destination of a sync, or a side of a bidirectional one. Without it
	// the side is only listed (a source).
	Write bool
	// Poll says that the side is polled for changes (KV.Notify or
	// KV.Poll), as sync.Syncer.Watch does for the sides it watches.
	Poll bool
}

// StoreAccess is one state store in a PolicySpec.
type StoreAccess struct {
	// Options are the store's options, as given to NewStore.
	Options StoreOptions
	// Lock says that the store's locks (Store.NewLock) are used.
	Lock bool
	// Documents says that the store's documents are used
	// (Store.LoadDocument and SaveDocument), as by a registry that keeps
	// its catalog in the store: create, read and update on
	// <mount>/data/<Path>/documents/*.
	Documents bool
}

// capOrder is the order in which Policy lists capabilities.
var capOrder = []string{capCreate, capRead, capUpdate, capPatch, capDelete, capList}

// Policy returns the Vault ACL policy, in HCL, that a token needs for what
// spec describes, and no more: one path block per path, sorted by path,
// with the capabilities in a fixed order, so that the same spec always
// gives the same text. It returns an error wrapping ErrInvalidOptions for
// options that New or NewStore would refuse.
//
// What each part needs (mount "secret", Path "app"):
//
//   - SecretPath: read on secret/data/app; with Write, create (the first
//     write of the secret) and update; with Poll, read on
//     secret/metadata/app.
//   - SecretKey: list on secret/metadata/app/* and read on
//     secret/data/app/*; with Write, update on secret/data/app/* (the
//     secret's metadata always exists when its data is written, since the
//     ownership marker goes first), create and patch on
//     secret/metadata/app/* (the marker), and for deletion update on
//     secret/delete/app/* (or secret/destroy/app/* with Destroy, or delete
//     on secret/metadata/app/* with DeleteMetadata); with Poll, read on
//     secret/metadata/app/*. An empty Path gives secret/data/* and so on.
//   - KV v1 (Version 1), SecretPath: read on secret/app; with Write,
//     create, update and delete on secret/app (KV v1 refuses a secret
//     without fields, so removing the last key deletes the secret).
//     Poll needs nothing more.
//   - KV v1, SecretKey: list and read on secret/app/*; with Write, create,
//     update and delete on secret/app/* (every delete is permanent,
//     whatever Destroy and DeleteMetadata say). Poll needs nothing more.
//   - A Store (Path "secretsync"): create, read and update on
//     secret/data/secretsync/state/*, create and read on
//     secret/data/secretsync/fingerprint-key (the key is made once and
//     never rewritten); with Lock, create, read and update on
//     secret/data/secretsync/lock/* and secret/data/secretsync/members/*
//     (the members' leases, see Lock), and list and delete on
//     secret/metadata/secretsync/members/* (to find the members, and to
//     delete a lease on leaving or once expired long ago).
//   - A Transit sealer (Mount "transit", Key "secretsync-state"): update on
//     transit/encrypt/secretsync-state and transit/decrypt/secretsync-state;
//     with Rewrap, update on transit/rewrap/secretsync-state. No create:
//     a misspelt key name is an error, never a new key.
//
// New and NewStore also read sys/internal/ui/mounts/<mount>, which Vault
// allows to any token with a capability under the mount, so the policy
// has no line for it. The policy needs nothing from Vault's default
// policy; tokens normally hold that one too, and the connection uses its
// auth/token/lookup-self to tell a revoked token from a missing
// capability.
func Policy(spec PolicySpec) (string, error) {
	rules := map[string]map[string]bool{}
	add := func(p string, caps ...string) {
		if rules[p] == nil {
			rules[p] = map[string]bool{}
		}
		for _, c := range caps {
			rules[p][c] = true
		}
	}
	for i, side := range spec.KV {
		opt, err := side.Options.normalize()
		if err != nil {
			return "", fmt.Errorf("vaultkv: policy: KV[%d]: %w", i, err)
		}
		if err := policySafe(opt.Mount, opt.Path); err != nil {
			return "", fmt.Errorf("vaultkv: policy: KV[%d]: %w", i, err)
		}
		kv := &KV{opt: opt}
		switch side.Version {
		case 0, 2:
		case 1:
			// KV v1: no data/, metadata/, delete/ or destroy/ paths, and
			// polls read the secrets themselves.
			p := kv.v1Path("")
			if opt.Layout == SecretKey {
				p += "/*"
				add(p, capList)
			}
			add(p, capRead)
			if side.Write {
				add(p, capCreate, capUpdate, capDelete)
			}
			continue
		default:
			return "", fmt.Errorf("vaultkv: policy: KV[%d]: %w: KV version %d (want 1 or 2)", i, ErrInvalidOptions, side.Version)
		}
		if opt.Layout == SecretPath {
			add(kv.keyPath(kindData, ""), capRead)
			if side.Write {
				add(kv.keyPath(kindData, ""), capCreate, capUpdate)
			}
			if side.Poll {
				add(kv.keyPath(kindMetadata, ""), capRead)
			}
			continue
		}
		glob := func(kind string) string { return kv.keyPath(kind, "") + "/*" }
		add(glob(kindMetadata), capList)
		add(glob(kindData), capRead)
		if side.Write {
			add(glob(kindData), capUpdate)
			add(glob(kindMetadata), capCreate, capPatch)
			switch {
			case opt.DeleteMetadata:
				add(glob(kindMetadata), capDelete)
			case opt.Destroy:
				add(glob(kindDestroy), capUpdate)
			default:
				add(glob(kindDelete), capUpdate)
			}
		}
		if side.Poll {
			add(glob(kindMetadata), capList, capRead)
		}
	}
	for i, st := range spec.Stores {
		opt, err := st.Options.normalize()
		if err != nil {
			return "", fmt.Errorf("vaultkv: policy: Stores[%d]: %w", i, err)
		}
		if err := policySafe(opt.Mount, opt.Path); err != nil {
			return "", fmt.Errorf("vaultkv: policy: Stores[%d]: %w", i, err)
		}
		data := path.Join(opt.Mount, kindData, opt.Path)
		add(data+"/state/*", capCreate, capRead, capUpdate)
		add(data+"/fingerprint-key", capCreate, capRead)
		if st.Lock {
			add(data+"/lock/*", capCreate, capRead, capUpdate)
			add(data+"/members/*", capCreate, capRead, capUpdate)
			add(path.Join(opt.Mount, kindMetadata, opt.Path)+"/members/*", capDelete, capList)
		}
		if st.Documents {
			add(data+"/documents/*", capCreate, capRead, capUpdate)
		}
	}
	for i, tr := range spec.Transit {
		opt, err := tr.Options.normalize()
		if err != nil {
			return "", fmt.Errorf("vaultkv: policy: Transit[%d]: %w", i, err)
		}
		if err := policySafe(opt.Mount, opt.Key); err != nil {
			return "", fmt.Errorf("vaultkv: policy: Transit[%d]: %w", i, err)
		}
		add(path.Join(opt.Mount, "encrypt", opt.Key), capUpdate)
		add(path.Join(opt.Mount, "decrypt", opt.Key), capUpdate)
		if tr.Rewrap {
			add(path.Join(opt.Mount, "rewrap", opt.Key), capUpdate)
		}
	}
	paths := make([]string, 0, len(rules))
	for p := range rules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	for i, p := range paths {
		if i > 0 {
			b.WriteByte('\n')
		}
		var caps []string
		for _, c := range capOrder {
			if rules[p][c] {
				caps = append(caps, fmt.Sprintf("%q", c))
			}
		}
		fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", p, strings.Join(caps, ", "))
	}
	return b.String(), nil
}

// policySafe refuses a mount or path that a policy would read as a glob
// ("*") or a segment wildcard ("+"), which would grant more than the
// configuration needs.
func policySafe(names ...string) error {
	for _, n := range names {
		if strings.Contains(n, "*") {
			return fmt.Errorf("%w: %q has a '*', which a Vault policy reads as a glob", ErrInvalidOptions, n)
		}
		for seg := range strings.SplitSeq(n, "/") {
			if seg == "+" {
				return fmt.Errorf("%w: %q has a \"+\" segment, which a Vault policy reads as a wildcard", ErrInvalidOptions, n)
			}
		}
	}
	return nil
}
