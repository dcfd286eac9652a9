package vaultkv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/destinationtest"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func mustPolicy(t testing.TB, spec vaultkv.PolicySpec) string {
	t.Helper()
	p, err := vaultkv.Policy(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A token holding exactly the policy that Policy returns passes the
// conformance suite, in both layouts (issue #10, defect 12), on KV v1 too.
func TestPolicyConformance(t *testing.T) {
	srv := vaulttest.Get(t)
	for _, layout := range layouts {
		t.Run("kv-v1/"+layout.String(), func(t *testing.T) {
			destinationtest.Run(t, destinationtest.Harness{
				Capabilities: destination.Capabilities{NoCheckAndSet: true, Atomic: layout == vaultkv.SecretPath},
				New: func(t *testing.T) destinationtest.Fixture {
					mount := v1Mount(t, srv)
					opt := v1Options(mount, layout)
					token := srv.NewToken(t, nil, mustPolicy(t, vaultkv.PolicySpec{KV: []vaultkv.KVAccess{{Options: opt, Write: true, Version: 1}}}))
					kv, err := vaultkv.New(context.Background(), srv.TokenConn(t, token), &opt)
					if err != nil {
						t.Fatal(err)
					}
					return v1Fixture(t, srv, mount, layout, kv)
				},
			})
		})
		t.Run(layout.String(), func(t *testing.T) {
			destinationtest.Run(t, destinationtest.Harness{
				New: func(t *testing.T) destinationtest.Fixture {
					mount := srv.NewMount(t)
					p := "team"
					if layout == vaultkv.SecretPath {
						p = "apps/web"
					}
					opt := vaultkv.Options{Mount: mount, Path: p, Layout: layout, Owner: "conformance"}
					token := srv.NewToken(t, nil, mustPolicy(t, vaultkv.PolicySpec{KV: []vaultkv.KVAccess{{Options: opt, Write: true}}}))
					kv, err := vaultkv.New(context.Background(), srv.TokenConn(t, token), &opt)
					if err != nil {
						t.Fatal(err)
					}
					b := newBackdoor(t, srv, mount, p, "value")
					bd := casBackdoor{b: b, srv: srv, mount: mount}
					if layout == vaultkv.SecretPath {
						b.field = ""
						return destinationtest.Fixture{Destination: kv, Set: bd.setField, Delete: bd.deleteField}
					}
					return destinationtest.Fixture{Destination: kv, Set: bd.setKey, Delete: b.deleteKey, SetUnowned: bd.setKey, Get: b.getKey}
				},
			})
		})
	}
}

// policySpec is a configuration with every kind of access: both layouts
// written and polled, each way of deleting, and a store with locks.
func policySpec(mount string) vaultkv.PolicySpec {
	return vaultkv.PolicySpec{
		KV: []vaultkv.KVAccess{
			{Options: vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretPath}, Write: true, Poll: true},
			{Options: vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey}, Write: true, Poll: true},
			{Options: vaultkv.Options{Mount: mount, Path: "team-d", Layout: vaultkv.SecretKey, Destroy: true}, Write: true},
			{Options: vaultkv.Options{Mount: mount, Path: "team-m", Layout: vaultkv.SecretKey, DeleteMetadata: true}, Write: true},
			{Options: vaultkv.Options{Mount: mount, Path: "source", Layout: vaultkv.SecretKey}},
		},
		Stores: []vaultkv.StoreAccess{{Options: vaultkv.StoreOptions{Mount: mount}, Lock: true, Documents: true}},
	}
}

// policySpecV1 is a configuration with every kind of access to a KV v1
// mount: both layouts written and polled, and a read-only side. It has no
// store: a Store needs KV v2.
func policySpecV1(mount string) vaultkv.PolicySpec {
	return vaultkv.PolicySpec{
		KV: []vaultkv.KVAccess{
			{Options: vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretPath}, Write: true, Poll: true, Version: 1},
			{Options: vaultkv.Options{Mount: mount, Path: "team", Layout: vaultkv.SecretKey}, Write: true, Poll: true, Version: 1},
			{Options: vaultkv.Options{Mount: mount, Path: "source", Layout: vaultkv.SecretKey}, Version: 1},
		},
	}
}

// policyCase is a configuration for TestPolicyExact.
type policyCase struct {
	name    string
	version int // of the mount
	spec    func(mount string) vaultkv.PolicySpec
	min     int // capabilities the policy has at least
}

var policyCases = []policyCase{
	{name: "kv-v2", version: 2, spec: policySpec, min: 25},
	{name: "kv-v1", version: 1, spec: policySpecV1, min: 11},
}

// exercise does, over conn, everything that pc.spec(mount) allows, and
// returns every error it met (none when the policy is complete).
func exercise(ctx context.Context, t *testing.T, srv *vaulttest.Server, conn *connection.Conn, mount string, pc policyCase) []error {
	// The read-only side has something to read.
	var err error
	if pc.version == 1 {
		_, err = srv.Client(t).Logical().WriteWithContext(ctx, mount+"/source/K", map[string]any{"value": "v"})
	} else {
		_, err = srv.Client(t).KVv2(mount).Put(ctx, "source/K", map[string]any{"value": "v"})
	}
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	fail := func(what string, err error) bool {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
		return err != nil
	}
	apply := func(kv *vaultkv.KV, c destination.Change) {
		res, err := kv.Apply(ctx, []destination.Change{c})
		if !fail(fmt.Sprint(kv, " ", c), err) {
			fail(fmt.Sprint(kv, " ", c), res[0])
		}
	}
	version := func(kv *vaultkv.KV, key string) string {
		m, err := kv.List(ctx)
		fail(fmt.Sprint(kv, " list"), err)
		return m[key].Version
	}
	spec := pc.spec(mount)
	for _, side := range spec.KV {
		kv, err := vaultkv.New(ctx, conn, &side.Options)
		if fail("New", err) {
			continue
		}
		if kv.KVVersion() != pc.version {
			t.Fatalf("%v: KV version %d, want %d", kv, kv.KVVersion(), pc.version)
		}
		if !side.Write {
			version(kv, "K")
			continue
		}
		apply(kv, destination.Change{Key: "K", Value: "1", Expect: version(kv, "K")})
		apply(kv, destination.Change{Key: "K", Value: "2", Expect: version(kv, "K")})
		// On KV v1 deleting the last field deletes the secret.
		if side.Options.Layout == vaultkv.SecretKey || pc.version == 1 {
			apply(kv, destination.Change{Key: "K", Delete: true, Expect: version(kv, "K")})
		}
		if side.Poll {
			_, err := kv.Poll(ctx)
			fail(fmt.Sprint(kv, " poll"), err)
		}
	}
	if len(spec.Stores) == 0 {
		return errs
	}
	store, err := vaultkv.NewStore(ctx, conn, &vaultkv.StoreOptions{Mount: mount})
	if fail("NewStore", err) {
		return errs
	}
	if _, err := store.Load(ctx, "s"); !errors.Is(err, state.ErrNotFound) {
		fail("Load before Save", err)
	}
	st := &state.State{Initialized: true}
	fail("Save (create)", store.Save(ctx, "s", st))
	fail("Save (update)", store.Save(ctx, "s", st))
	_, err = store.Load(ctx, "s")
	fail("Load", err)
	_, err = store.FingerprintKey(ctx)
	fail("FingerprintKey (create)", err)
	if spec.Stores[0].Documents {
		if _, err := store.LoadDocument(ctx, "d"); !errors.Is(err, state.ErrNotFound) {
			fail("LoadDocument before SaveDocument", err)
		}
		doc := &state.Document{Data: []byte("{}")}
		fail("SaveDocument (create)", store.SaveDocument(ctx, "d", doc))
		fail("SaveDocument (update)", store.SaveDocument(ctx, "d", doc))
		_, err = store.LoadDocument(ctx, "d")
		fail("LoadDocument", err)
	}
	if again, err := vaultkv.NewStore(ctx, conn, &vaultkv.StoreOptions{Mount: mount}); !fail("NewStore", err) {
		_, err = again.FingerprintKey(ctx)
		fail("FingerprintKey (read)", err)
	}
	lock, err := store.NewLock(&vaultkv.LockOptions{TTL: time.Second})
	if fail("NewLock", err) {
		return errs
	}
	if _, release, err := lock.TryAcquire(ctx, "s"); !fail("TryAcquire (create)", err) {
		release()
	}
	_, release, err := lock.TryAcquire(ctx, "s")
	if errors.Is(err, state.ErrHeld) {
		// The release (which reports no error) did not happen: take the
		// lease over once it has expired, which writes it again.
		other, _ := store.NewLock(&vaultkv.LockOptions{TTL: time.Second})
		if _, _, err = other.TryAcquire(ctx, "s"); errors.Is(err, state.ErrHeld) {
			time.Sleep(time.Second)
			_, release, err = other.TryAcquire(ctx, "s")
		}
	}
	if !fail("TryAcquire (again)", err) {
		release()
	}
	// Acquire joins the members: it writes its lease (create), and
	// Members renews it (update), lists and reads the members' leases,
	// and deletes one left by a member that died long ago (its TTL here
	// 100ms: deleted after 5 TTLs unchanged); Close deletes the lease.
	if _, err := srv.Client(t).KVv2(mount).Put(ctx, "secretsync/members/gone", map[string]any{"holder": "gone", "ttl_ms": 100}); err != nil {
		t.Fatal(err)
	}
	member, err := store.NewLock(&vaultkv.LockOptions{TTL: time.Second, Holder: "member"})
	if fail("NewLock", err) {
		return errs
	}
	_, release, err = member.Acquire(ctx, "m")
	if fail("Acquire", err) {
		return errs
	}
	time.Sleep(600 * time.Millisecond)
	members, err := member.Members(ctx)
	if !fail("Members", err) && !slices.Equal(members, []string{"member"}) {
		fail("Members", fmt.Errorf("members %v, want only itself", members))
	}
	release()
	fail("Close", member.Close())
	if _, err := srv.Client(t).KVv2(mount).GetMetadata(ctx, "secretsync/members/gone"); err == nil {
		fail("Members", errors.New("the dead member's lease is still there"))
	}
	if _, err := srv.Client(t).KVv2(mount).GetMetadata(ctx, "secretsync/members/member"); err == nil {
		fail("Close", errors.New("the member's lease is still there"))
	}
	return errs
}

var ruleRE = regexp.MustCompile(`path "([^"]+)" \{\n  capabilities = \[([^\]]*)\]\n\}\n`)

// rules parses Policy's output into (path, capability) pairs, in order.
func rules(t *testing.T, policy string) [][2]string {
	t.Helper()
	var out [][2]string
	blocks := ruleRE.FindAllStringSubmatch(policy, -1)
	if strings.Count(policy, "path ") != len(blocks) {
		t.Fatalf("cannot parse the policy:\n%s", policy)
	}
	for _, m := range blocks {
		for _, c := range strings.Split(m[2], ", ") {
			c, err := strconv.Unquote(c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, [2]string{m[1], c})
		}
	}
	return out
}

// without returns policy less the one capability of rule.
func without(t *testing.T, policy string, rule [2]string) string {
	t.Helper()
	var b strings.Builder
	for _, m := range ruleRE.FindAllStringSubmatch(policy, -1) {
		var caps []string
		for _, c := range strings.Split(m[2], ", ") {
			if c != strconv.Quote(rule[1]) || m[1] != rule[0] {
				caps = append(caps, c)
			}
		}
		if len(caps) > 0 {
			fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", m[1], strings.Join(caps, ", "))
		}
	}
	return b.String()
}

// names reports whether err is a permission error for capability on a
// request path that policyPath covers, and says both in its text.
func names(err error, policyPath, capability string) bool {
	var e *connection.Error
	if !errors.As(err, &e) || !errors.Is(err, connection.ErrPermissionDenied) || e.Capability != capability {
		return false
	}
	covered := e.Path == policyPath || (strings.HasSuffix(policyPath, "*") && strings.HasPrefix(e.Path, strings.TrimSuffix(policyPath, "*")))
	msg := err.Error()
	return covered && strings.Contains(msg, strconv.Quote(capability)) && strings.Contains(msg, e.Path)
}

// A token with exactly the policy can do everything the configuration
// does; a token lacking any one capability of it fails, with an error that
// names that capability and the path (issue #10, defect 12).
func TestPolicyExact(t *testing.T) {
	srv := vaulttest.Get(t)
	ctx := context.Background()
	for _, pc := range policyCases {
		t.Run(pc.name, func(t *testing.T) {
			newMount := func(t *testing.T) string { return srv.NewMount(t, vaulttest.MountOptions{Version: pc.version}) }
			for _, opts := range []vaulttest.TokenOptions{{}, {NoDefaultPolicy: true}} {
				mount := newMount(t)
				policy := mustPolicy(t, pc.spec(mount))
				token := srv.NewToken(t, &opts, policy)
				if errs := exercise(ctx, t, srv, srv.TokenConn(t, token), mount, pc); len(errs) > 0 {
					t.Fatalf("with exactly the policy (%+v):\n%s\nerrors: %v", opts, policy, errs)
				}
			}
			pairs := rules(t, mustPolicy(t, pc.spec("m")))
			if len(pairs) < pc.min {
				t.Fatalf("only %d capabilities in the policy", len(pairs))
			}
			for i, rule := range pairs {
				t.Run(fmt.Sprintf("%d:%s:%s", i, rule[1], strings.TrimPrefix(rule[0], "m/")), func(t *testing.T) {
					mount := newMount(t)
					full := mustPolicy(t, pc.spec(mount))
					r := rules(t, full)[i]
					lacking := without(t, full, r)
					if len(rules(t, lacking)) != len(pairs)-1 {
						t.Fatalf("removing %v left:\n%s", r, lacking)
					}
					errs := exercise(ctx, t, srv, srv.TokenConn(t, srv.NewToken(t, nil, lacking)), mount, pc)
					for _, err := range errs {
						if names(err, r[0], r[1]) {
							return
						}
					}
					t.Fatalf("without %q on %q, no error names them: %v", r[1], r[0], errs)
				})
			}
		})
	}
}

// The KV v1 policy has no data/ or metadata/ path, and says exactly what
// the package documentation of Policy says.
func TestPolicyKVv1Text(t *testing.T) {
	got := mustPolicy(t, vaultkv.PolicySpec{KV: []vaultkv.KVAccess{
		{Options: vaultkv.Options{Mount: "secret", Path: "app", Layout: vaultkv.SecretPath}, Write: true, Poll: true, Version: 1},
		{Options: vaultkv.Options{Mount: "secret", Path: "team", Layout: vaultkv.SecretKey, Destroy: true}, Write: true, Version: 1},
		{Options: vaultkv.Options{Mount: "secret", Path: "src", Layout: vaultkv.SecretKey}, Poll: true, Version: 1},
	}})
	want := `path "secret/app" {
  capabilities = ["create", "read", "update", "delete"]
}

path "secret/src/*" {
  capabilities = ["read", "list"]
}

path "secret/team/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
`
	if got != want {
		t.Fatalf("policy:\n%s\nwant:\n%s", got, want)
	}
	if _, err := vaultkv.Policy(vaultkv.PolicySpec{KV: []vaultkv.KVAccess{{Options: vaultkv.Options{Mount: "m", Path: "p"}, Version: 3}}}); !errors.Is(err, vaultkv.ErrInvalidOptions) {
		t.Fatalf("KV version 3: %v, want ErrInvalidOptions", err)
	}
}

// The package documentation shows what Policy returns for its example.
func TestPolicyDoc(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	want := mustPolicy(t, docPolicySpec)
	var got strings.Builder
	in := false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case line == "// # Vault policy":
			in = true
		case in && strings.HasPrefix(line, "// # "):
			in = false
		case in && strings.HasPrefix(line, "//\t"):
			got.WriteString(strings.TrimPrefix(line, "//\t") + "\n")
		case in && line == "//" && got.Len() > 0 && !strings.HasSuffix(got.String(), "\n\n"):
			got.WriteString("\n")
		}
	}
	if strings.TrimSpace(got.String()) != strings.TrimSpace(want) {
		t.Fatalf("the policy in doc.go is not what Policy returns for its example; want:\n%s\ngot:\n%s", want, got.String())
	}
}

// docPolicySpec is the example of the package documentation.
var docPolicySpec = vaultkv.PolicySpec{
	KV: []vaultkv.KVAccess{
		{Options: vaultkv.Options{Mount: "secret", Path: "app", Layout: vaultkv.SecretKey}, Write: true, Poll: true},
	},
	Stores: []vaultkv.StoreAccess{{Options: vaultkv.StoreOptions{Mount: "secret"}, Lock: true}},
}
