package azurekv_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/azurekv"
	"github.com/secretsync/secretsync/destination/azurekv/azurekvtest"
)

var bg = context.Background()

func put(key, value, expect string) destination.Change {
	return destination.Change{Key: key, Value: value, Expect: expect}
}

func del(key, expect string) destination.Change {
	return destination.Change{Key: key, Delete: true, Expect: expect}
}

// apply applies changes and returns the error of each; a call error fails
// the test.
func apply(t *testing.T, d destination.Destination, changes ...destination.Change) []error {
	t.Helper()
	errs, err := d.Apply(bg, changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return errs
}

func mustApply(t *testing.T, d destination.Destination, changes ...destination.Change) {
	t.Helper()
	for i, err := range apply(t, d, changes...) {
		if err != nil {
			t.Fatalf("change %d (%v): %v", i, changes[i], err)
		}
	}
}

func list(t *testing.T, d destination.Destination) map[string]destination.Secret {
	t.Helper()
	m, err := d.List(bg)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

// TestBearerChallenge: the first request goes without a token and gets
// Key Vault's challenge; the SDK then gets one token from Entra (after
// MSAL's discovery) and sends it with every later request.
func TestBearerChallenge(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	mustApply(t, d, put("a", "1", ""), put("b", "2", ""), put("c", "3", ""))
	m := list(t, d)
	mustApply(t, d, put("a", "1b", m["a"].Version), del("b", m["b"].Version))
	list(t, d)

	log := srv.Log()
	var vault []azurekvtest.Request
	for _, r := range log {
		switch r.Op {
		case azurekvtest.OpToken, azurekvtest.OpOpenIDConfig, azurekvtest.OpInstanceDiscovery:
		default:
			vault = append(vault, r)
		}
	}
	if first := vault[0]; first.Authorized || first.Status != http.StatusUnauthorized {
		t.Fatalf("first vault request %+v, want it unauthenticated and challenged", first)
	}
	for _, r := range vault[1:] {
		if !r.Authorized {
			t.Fatalf("request %+v after the challenge has no valid token", r)
		}
	}
	for op, want := range map[string]int{azurekvtest.OpChallenge: 1, azurekvtest.OpToken: 1, azurekvtest.OpOpenIDConfig: 1} {
		if got := srv.Count(op); got != want {
			t.Errorf("%s: %d requests, want %d", op, got, want)
		}
	}
	// The token request came after the challenge, for the vault's tenant.
	for _, r := range log {
		if r.Op == azurekvtest.OpToken && r.Path != "/"+srv.TenantID()+"/oauth2/v2.0/token" {
			t.Fatalf("token request to %s", r.Path)
		}
	}
}

// TestNameReuseAfterSoftDelete: creating a name that this destination
// soft-deleted recovers the deleted secret (Key Vault refuses the name
// otherwise), waits until the recovery completes, then writes a new
// version over it.
func TestNameReuseAfterSoftDelete(t *testing.T) {
	srv := azurekvtest.New(t, &azurekvtest.Options{DeleteDelay: 30 * time.Millisecond, RecoverDelay: 50 * time.Millisecond})
	d := open(t, srv, "owner")
	mustApply(t, d, put("db", "first", ""))
	v := list(t, d)["db"]
	mustApply(t, d, del("db", v.Version))
	if _, ok := list(t, d)["db"]; ok {
		t.Fatal("listed after the delete")
	}
	if s := srv.State("db"); s != azurekvtest.StateDeleting && s != azurekvtest.StateDeleted {
		t.Fatalf("state after delete: %q", s)
	}
	srv.ResetCounts()
	mustApply(t, d, put("db", "second", ""))
	got := list(t, d)["db"]
	if got.Value != "second" || got.Version == v.Version {
		t.Fatalf("after re-create: %v", got)
	}
	if n := srv.Count(azurekvtest.OpRecoverSecret); n != 1 {
		t.Fatalf("%d recover requests, want 1", n)
	}
	if vs := srv.Versions("db"); len(vs) != 2 || vs[0].Version != v.Version {
		t.Fatalf("versions after recovery and write: %v", vs)
	}
	// The recovery took time: the driver polled until it could read it.
	if n := srv.Count(azurekvtest.OpGetSecret); n < 3 {
		t.Fatalf("%d reads: the driver did not wait for the recovery", n)
	}

	// A soft-deleted secret that is not ours keeps its name: ErrNotOwned,
	// and it stays deleted.
	if _, err := srv.Set("theirs", "x", nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Delete("theirs"); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, d, put("theirs", "ours", ""))[0]; !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("create over someone else's deleted secret = %v, want ErrNotOwned", err)
	}
	if s := srv.State("theirs"); s != azurekvtest.StateDeleted {
		t.Fatalf("their deleted secret is %q", s)
	}
	// One of another association of the same library is not ours either.
	if _, err := open(t, srv, "other").Apply(bg, []destination.Change{put("db-other", "x", "")}); err != nil {
		t.Fatal(err)
	}
	o := list(t, open(t, srv, "other"))["db-other"]
	mustApply(t, open(t, srv, "other"), del("db-other", o.Version))
	if err := apply(t, d, put("db-other", "ours", ""))[0]; !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("create over another owner's deleted secret = %v, want ErrNotOwned", err)
	}
}

// TestPurge: with Purge, a delete waits for the soft delete to complete
// and purges; creating the name again is then a fresh create (after
// waiting for the purge), with no recovery.
func TestPurge(t *testing.T) {
	srv := azurekvtest.New(t, &azurekvtest.Options{DeleteDelay: 30 * time.Millisecond, PurgeDelay: 30 * time.Millisecond})
	d := open(t, srv, "owner", func(o *azurekv.Options) { o.Purge = true })
	mustApply(t, d, put("db", "first", ""))
	v := list(t, d)["db"]
	mustApply(t, d, del("db", v.Version))
	if s := srv.State("db"); s != azurekvtest.StatePurging && s != "" {
		t.Fatalf("state after delete with purge: %q", s)
	}
	if n := srv.Count(azurekvtest.OpPurgeSecret); n != 1 {
		t.Fatalf("%d purges", n)
	}
	mustApply(t, d, put("db", "second", ""))
	if vs := srv.Versions("db"); len(vs) != 1 || vs[0].Value != "second" {
		t.Fatalf("versions after purge and create: %d", len(vs))
	}
	if n := srv.Count(azurekvtest.OpRecoverSecret); n != 0 {
		t.Fatalf("%d recoveries after a purge", n)
	}

	// A crash between delete and purge: the next delete purges.
	mustApply(t, d, put("crash", "x", ""))
	if err := srv.Delete("crash"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, d, del("crash", "whatever"))
	if s := srv.State("crash"); s != "" && s != azurekvtest.StatePurging {
		t.Fatalf("a deleted secret of ours is %q after a delete with Purge", s)
	}

	// Purge protection: the delete happened, the purge is refused.
	protected := azurekvtest.New(t, &azurekvtest.Options{PurgeProtection: true})
	dp := open(t, protected, "owner", func(o *azurekv.Options) { o.Purge = true })
	mustApply(t, dp, put("db", "x", ""))
	err := apply(t, dp, del("db", list(t, dp)["db"].Version))[0]
	if err == nil || !strings.Contains(err.Error(), "not purged") || errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("delete with purge refused = %v", err)
	}
	if s := protected.State("db"); s != azurekvtest.StateDeleted {
		t.Fatalf("state %q", s)
	}
}

// TestPaging: List follows nextLink across pages of 25, and the
// after-write check reads every page of a secret's versions.
func TestPaging(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	var changes []destination.Change
	for i := range 60 {
		changes = append(changes, put(fmt.Sprintf("k%02d", i), fmt.Sprint(i), ""))
	}
	mustApply(t, d, changes...)
	for i := range 10 {
		if _, err := srv.Set(fmt.Sprintf("unowned%d", i), "x", nil); err != nil {
			t.Fatal(err)
		}
	}
	srv.ResetCounts()
	m := list(t, d)
	if len(m) != 60 || m["k42"].Value != "42" {
		t.Fatalf("listed %d", len(m))
	}
	if n := srv.Count(azurekvtest.OpListSecrets); n != 3 {
		t.Fatalf("%d list pages for 70 secrets, want 3", n)
	}
	if n := srv.Count(azurekvtest.OpGetSecret); n != 60 {
		t.Fatalf("%d reads for 60 owned secrets", n)
	}
	// The nextLink names the port, as Key Vault's does.
	for _, r := range srv.Log() {
		if r.Op == azurekvtest.OpListSecrets && r.Host != "fakevault.vault.azure.net" && r.Host != "fakevault.vault.azure.net:443" {
			t.Fatalf("list request to %s", r.Host)
		}
	}

	// Many versions: the check before and after the write pages too.
	for i := range 30 {
		if _, err := srv.Set("k00", fmt.Sprint("v", i), ours("owner")); err != nil {
			t.Fatal(err)
		}
	}
	srv.ResetCounts()
	mustApply(t, d, put("k00", "new", list(t, d)["k00"].Version))
	if n := srv.Count(azurekvtest.OpListVersions); n != 4 {
		t.Fatalf("%d version pages for 31 and 32 versions, want 4", n)
	}
}

// TestValueLimits: a value over 25 KiB, or not valid UTF-8, is refused
// with ErrInvalidValue before any request; 25 KiB exactly is written.
func TestValueLimits(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	list(t, d) // authenticate first
	before := srv.VaultRequests()
	big := strings.Repeat("x", azurekv.MaxValueBytes+1)
	errs := apply(t, d, put("big", big, ""), put("bad", "a\xffb", ""))
	for i, err := range errs {
		if !errors.Is(err, destination.ErrInvalidValue) {
			t.Fatalf("change %d = %v, want ErrInvalidValue", i, err)
		}
		if strings.Contains(err.Error(), "xxxx") || strings.Contains(err.Error(), "a\xffb") {
			t.Fatal("the error holds the value")
		}
	}
	if n := srv.VaultRequests() - before; n != 0 {
		t.Fatalf("%d requests for refused values", n)
	}
	exact := strings.Repeat("é", azurekv.MaxValueBytes/2) // 2 bytes each
	mustApply(t, d, put("exact", exact, ""))
	if list(t, d)["exact"].Value != exact {
		t.Fatal("the 25 KiB value did not round-trip")
	}
	// Empty values are values.
	mustApply(t, d, put("empty", "", ""))
	if s, ok := list(t, d)["empty"]; !ok || s.Value != "" {
		t.Fatal("the empty value is not listed")
	}
}

// TestRaceBetweenReadAndWrite: another writer's version landing between
// the read and the write is found by the version check after the write:
// ErrConflict, naming that version.
func TestRaceBetweenReadAndWrite(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	mustApply(t, d, put("k", "v1", ""))
	v1 := list(t, d)["k"]
	var raced atomic.Bool
	srv.OnRequest(func(op, name string) {
		if op == azurekvtest.OpSetSecret && name == "k" && !raced.Swap(true) {
			if _, err := srv.Set("k", "theirs", ours("owner")); err != nil {
				t.Error(err)
			}
		}
	})
	err := apply(t, d, put("k", "v2", v1.Version))[0]
	if !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("write raced by another = %v, want ErrConflict", err)
	}
	theirs := srv.Versions("k")[1].Version
	if !strings.Contains(err.Error(), theirs) {
		t.Fatalf("the conflict does not name version %s: %v", theirs, err)
	}

	// A race on a create is found the same way.
	raced.Store(false)
	srv.OnRequest(func(op, name string) {
		if op == azurekvtest.OpSetSecret && name == "new" && !raced.Swap(true) {
			if _, err := srv.Set("new", "theirs", ours("owner")); err != nil {
				t.Error(err)
			}
		}
	})
	if err := apply(t, d, put("new", "ours", ""))[0]; !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("create raced by another = %v, want ErrConflict", err)
	}

	// A version written between the listing and the read of the current
	// version is refused before the write.
	srv.OnRequest(nil)
	cur := list(t, d)["k"]
	raced.Store(false)
	srv.OnRequest(func(op, name string) {
		if op == azurekvtest.OpGetSecret && name == "k" && !raced.Swap(true) {
			if _, err := srv.Set("k", "theirs-2", ours("owner")); err != nil {
				t.Error(err)
			}
		}
	})
	n := len(srv.Versions("k"))
	if err := apply(t, d, put("k", "v3", cur.Version))[0]; !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("write after a change = %v, want ErrConflict", err)
	}
	if len(srv.Versions("k")) != n+1 {
		t.Fatal("the write was sent although the version read was not Expect")
	}
}

// TestRaceBetweenReadAndDelete: a version written between the read and
// the delete is deleted with the secret; the delete is undone (the secret
// recovered) and reported as a conflict.
func TestRaceBetweenReadAndDelete(t *testing.T) {
	srv := azurekvtest.New(t, &azurekvtest.Options{RecoverDelay: 20 * time.Millisecond})
	d := open(t, srv, "owner", func(o *azurekv.Options) { o.Purge = true })
	mustApply(t, d, put("k", "v1", ""))
	v1 := list(t, d)["k"]
	var raced atomic.Bool
	srv.OnRequest(func(op, name string) {
		if op == azurekvtest.OpDeleteSecret && !raced.Swap(true) {
			if _, err := srv.Set("k", "theirs", ours("owner")); err != nil {
				t.Error(err)
			}
		}
	})
	if err := apply(t, d, del("k", v1.Version))[0]; !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("delete raced by a write = %v, want ErrConflict", err)
	}
	if s, ok := srv.Get("k"); !ok || s.Value != "theirs" {
		t.Fatalf("after the undone delete: %v %v", s.Value, ok)
	}
	if n := srv.Count(azurekvtest.OpPurgeSecret); n != 0 {
		t.Fatal("purged a secret whose delete was undone")
	}
}

// TestUnavailable: 5xx and 429 after the SDK's retries, a closed server
// and refused credentials match ErrUnavailable; Apply stops at the first.
func TestUnavailable(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	mustApply(t, d, put("a", "1", ""))

	// Retried by the SDK: two 429s, then success.
	srv.FailNext(2, azurekvtest.Fault{Status: http.StatusTooManyRequests})
	mustApply(t, d, put("b", "2", ""))

	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInternalServerError} {
		srv.FailNext(3, azurekvtest.Fault{Status: status}) // 1 try + 2 retries
		errs, err := d.Apply(bg, []destination.Change{put("c", "3", ""), put("d", "4", "")})
		if !errors.Is(err, destination.ErrUnavailable) {
			t.Fatalf("%d: Apply = %v, want ErrUnavailable", status, err)
		}
		for i, e := range errs {
			if !errors.Is(e, destination.ErrUnavailable) {
				t.Fatalf("%d: change %d = %v", status, i, e)
			}
		}
		srv.FailNext(3, azurekvtest.Fault{Status: status})
		if _, err := d.List(bg); !errors.Is(err, destination.ErrUnavailable) {
			t.Fatalf("%d: List = %v, want ErrUnavailable", status, err)
		}
	}
	if _, ok := srv.Get("c"); ok {
		t.Fatal("c was written")
	}

	bad := open(t, srv, "owner", func(o *azurekv.Options) { o.ClientSecret = "wrong" })
	if _, err := bad.List(bg); !errors.Is(err, destination.ErrUnavailable) || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("List with a wrong client secret = %v", err)
	}
	if strings.Contains(fmt.Sprint(bad), "wrong") {
		t.Fatal("the destination prints its credentials")
	}

	down := azurekvtest.New(t, nil)
	dd := open(t, down, "owner")
	down.Close()
	if _, err := dd.Apply(bg, []destination.Change{put("a", "1", "")}); !errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("Apply to a closed server = %v", err)
	}
}

// TestForbidden: a missing permission is an error of the change (not of
// the vault), naming what the credentials need.
func TestForbidden(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	srv.SetPermissions(azurekvtest.PermGet, azurekvtest.PermList)
	d := open(t, srv, "owner")
	errs, err := d.Apply(bg, []destination.Change{put("a", "1", ""), put("b", "2", "")})
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	for _, e := range errs {
		if e == nil || errors.Is(e, destination.ErrUnavailable) || !strings.Contains(e.Error(), "Key Vault Secrets Officer") || !strings.Contains(e.Error(), "set permission") {
			t.Fatalf("put without the set permission = %v", e)
		}
	}
}

// TestPermissions: the access-policy permissions the package
// documentation names (get, list, set, delete, recover, purge) are enough
// for every operation, and each is needed.
func TestPermissions(t *testing.T) {
	all := []string{azurekvtest.PermGet, azurekvtest.PermList, azurekvtest.PermSet, azurekvtest.PermDelete, azurekvtest.PermRecover, azurekvtest.PermPurge}
	run := func(perms []string) error {
		srv := azurekvtest.New(t, nil)
		srv.SetPermissions(perms...)
		for i, purge := range []bool{false, true} {
			d := open(t, srv, "owner", func(o *azurekv.Options) { o.Purge = purge })
			k := fmt.Sprint("k", i)
			steps := []func() error{
				func() error { return first(d.Apply(bg, []destination.Change{put(k, "1", "")})) },
				func() error { _, err := d.List(bg); return err },
				func() error {
					m, err := d.List(bg)
					if err != nil {
						return err
					}
					return first(d.Apply(bg, []destination.Change{put(k, "2", m[k].Version)}))
				},
				func() error {
					m, err := d.List(bg)
					if err != nil {
						return err
					}
					return first(d.Apply(bg, []destination.Change{del(k, m[k].Version)}))
				},
				// After a soft delete: recovery; after a purge: a create.
				func() error { return first(d.Apply(bg, []destination.Change{put(k, "3", "")})) },
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := run(all); err != nil {
		t.Fatalf("with every documented permission: %v", err)
	}
	for i, p := range all {
		rest := append(append([]string{}, all[:i]...), all[i+1:]...)
		if err := run(rest); err == nil {
			t.Errorf("without %s: no error, but the package documentation says it is needed", p)
		}
	}
}

func first(errs []error, err error) error {
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// TestTags: every version carries the marker and the custom tags; tags
// that others set on a secret are kept by an update.
func TestTags(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "assoc-1", func(o *azurekv.Options) { o.Tags = map[string]string{"env": "prod"} })
	mustApply(t, d, put("k", "1", ""))
	s, _ := srv.Get("k")
	want := map[string]string{azurekv.TagManagedBy: azurekv.ManagedBy, azurekv.TagOwner: "assoc-1", "env": "prod"}
	if fmt.Sprint(s.Tags) != fmt.Sprint(want) {
		t.Fatalf("tags %v, want %v", s.Tags, want)
	}
	tags := s.Tags
	tags["team"] = "payments"
	if _, err := srv.Set("k", "1", tags); err != nil {
		t.Fatal(err)
	}
	mustApply(t, d, put("k", "2", list(t, d)["k"].Version))
	if s, _ := srv.Get("k"); s.Tags["team"] != "payments" || s.Tags["env"] != "prod" || s.Value != "2" {
		t.Fatalf("after update: %v", s.Tags)
	}

	for name, tags := range map[string]map[string]string{
		"marker name": {azurekv.TagOwner: "x"},
		"too many":    manyTags(14),
		"empty name":  {"": "x"},
		"long value":  {"k": strings.Repeat("v", 257)},
	} {
		_, err := azurekv.New(bg, &azurekv.Options{VaultURL: srv.VaultURL(), TenantID: "t", ClientID: "c", ClientSecret: "s", Owner: "o", Tags: tags})
		if !errors.Is(err, azurekv.ErrInvalidOptions) {
			t.Errorf("%s: New = %v, want ErrInvalidOptions", name, err)
		}
	}
	if _, err := azurekv.New(bg, &azurekv.Options{VaultURL: srv.VaultURL(), TenantID: "t", ClientID: "c", ClientSecret: "s", Owner: "o", Tags: manyTags(13)}); err != nil {
		t.Errorf("13 custom tags and the marker: %v", err)
	}
}

func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprint("t", i)] = "v"
	}
	return m
}

// TestCaseInsensitiveNames: Key Vault names ignore case, so a create of
// a name that differs from an existing one only in case is a conflict,
// never a second secret.
func TestCaseInsensitiveNames(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	mustApply(t, d, put("Db-Url", "1", ""))
	if err := apply(t, d, put("db-url", "2", ""))[0]; !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("create of db-url beside Db-Url = %v, want ErrConflict", err)
	}
	if m := list(t, d); len(m) != 1 || m["Db-Url"].Value != "1" {
		t.Fatalf("listed %v", m)
	}
}

// TestClouds: the credentials go to the authority of the configured
// cloud, and the challenge names that cloud's vault resource.
func TestClouds(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	for _, c := range []string{"AzureChina", "AzureUSGovernment", "azurechinacloud", ""} {
		d := open(t, srv, "owner", func(o *azurekv.Options) { o.Cloud, o.VaultURL = c, srv.VaultURLIn(c) })
		mustApply(t, d, put("in-cloud", c, list(t, d)["in-cloud"].Version))
	}
	hosts := map[string]bool{}
	for _, r := range srv.Log() {
		if r.Op == azurekvtest.OpToken {
			hosts[r.Host] = true
		}
	}
	for _, h := range []string{"login.chinacloudapi.cn", "login.microsoftonline.us", "login.microsoftonline.com"} {
		if !hosts[h] {
			t.Errorf("no token request to %s (got %v)", h, hosts)
		}
	}
	if _, err := azurekv.New(bg, &azurekv.Options{VaultURL: srv.VaultURL(), TenantID: "t", ClientID: "c", ClientSecret: "s", Cloud: "Mars"}); !errors.Is(err, azurekv.ErrInvalidOptions) {
		t.Fatalf("unknown cloud: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	ok := azurekv.Options{VaultURL: "https://v.vault.azure.net", TenantID: "t", ClientID: "c", ClientSecret: "s"}
	if _, err := azurekv.New(bg, &ok); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*azurekv.Options){
		"http URL":       func(o *azurekv.Options) { o.VaultURL = "http://v.vault.azure.net" },
		"path":           func(o *azurekv.Options) { o.VaultURL = "https://v.vault.azure.net/secrets" },
		"no tenant":      func(o *azurekv.Options) { o.TenantID = "" },
		"no client":      func(o *azurekv.Options) { o.ClientID = "" },
		"no secret":      func(o *azurekv.Options) { o.ClientSecret = "" },
		"http authority": func(o *azurekv.Options) { o.AuthorityHost = "http://login.example" },
	} {
		o := ok
		mod(&o)
		if _, err := azurekv.New(bg, &o); !errors.Is(err, azurekv.ErrInvalidOptions) {
			t.Errorf("%s: New = %v, want ErrInvalidOptions", name, err)
		}
	}
	if s := fmt.Sprintf("%v %+v %#v", ok, ok, ok); strings.Contains(s, "ClientSecret:s ") || !strings.Contains(s, "*****") {
		t.Fatalf("Options print their secret: %s", s)
	}
}

func TestClose(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(bg); !errors.Is(err, azurekv.ErrClosed) {
		t.Fatalf("List after Close = %v", err)
	}
	errs, err := d.Apply(bg, []destination.Change{put("a", "1", "")})
	if !errors.Is(err, azurekv.ErrClosed) || !errors.Is(errs[0], azurekv.ErrClosed) {
		t.Fatalf("Apply after Close = %v, %v", errs, err)
	}
}

func TestNormalizeKey(t *testing.T) {
	for in, want := range map[string]string{
		"DB_URL":                        "DB-URL",
		"vault/kv_1a2b/app/prod":        "vault-kv-1a2b-app-prod",
		"api-key.v2":                    "api-key-v2",
		"pässwort":                      "p-sswort",
		"already-fine-123":              "already-fine-123",
		"\xff":                          "-",
		strings.Repeat("a", 127):        strings.Repeat("a", 127),
		"vault/{{ .SecretPath }}/x y z": "vault-----SecretPath----x-y-z",
	} {
		got, err := azurekv.NormalizeKey(in)
		if err != nil || got != want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", strings.Repeat("a", 128), strings.Repeat("é", 128)} {
		if _, err := azurekv.NormalizeKey(in); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("NormalizeKey(%q) = %v, want ErrInvalidKey", in, err)
		}
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"", "a", "DB_URL", "vault/kv/a/b", "\x00", "ü", strings.Repeat("x", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		n, err := azurekv.NormalizeKey(key)
		if err != nil {
			if !errors.Is(err, destination.ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q) = %v", key, err)
			}
			return
		}
		if n2, err := azurekv.NormalizeKey(n); err != nil || n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", key, n, n2, err)
		}
		if len(n) == 0 || len(n) > azurekv.MaxNameLength {
			t.Fatalf("%q -> %q", key, n)
		}
		for _, r := range n {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				t.Fatalf("%q -> %q holds %q", key, n, r)
			}
		}
	})
}

// TestDisabledSecret: a disabled secret is not listed (Key Vault does not
// return its value), and a write to it fails for that key alone.
func TestDisabledSecret(t *testing.T) {
	srv := azurekvtest.New(t, nil)
	d := open(t, srv, "owner")
	mustApply(t, d, put("k", "1", ""), put("other", "x", ""))
	if err := srv.SetEnabled("k", false); err != nil {
		t.Fatal(err)
	}
	if _, ok := list(t, d)["k"]; ok {
		t.Fatal("a disabled secret is listed")
	}
	errs, err := d.Apply(bg, []destination.Change{put("k", "2", ""), put("other", "y", list(t, d)["other"].Version)})
	if err != nil || errs[0] == nil || errors.Is(errs[0], destination.ErrUnavailable) || !strings.Contains(errs[0].Error(), "disabled") || errs[1] != nil {
		t.Fatalf("Apply = %v, %v", errs, err)
	}
}

// TestCanary: no error, listing or printed form holds a value or the
// client secret.
func TestCanary(t *testing.T) {
	const canary = "canary-7f3a9c"
	srv := azurekvtest.New(t, &azurekvtest.Options{ClientSecret: canary + "-secret"})
	opts := func(o *azurekv.Options) { o.ClientSecret = canary + "-secret" }
	d := open(t, srv, "owner", opts)
	var seen []string
	note := func(v ...any) { seen = append(seen, fmt.Sprint(v...), fmt.Sprintf("%+v %#v", v, v)) }
	errs, err := d.Apply(bg, []destination.Change{put("k", canary, ""), put("bad_key", canary, ""), put("big", strings.Repeat(canary, 3000), "")})
	note(errs, err)
	errs, err = d.Apply(bg, []destination.Change{put("k", canary+"2", ""), put("k", canary+"3", "stale"), del("k", "stale")})
	note(errs, err)
	srv.SetPermissions(azurekvtest.PermGet, azurekvtest.PermList)
	errs, err = d.Apply(bg, []destination.Change{put("k", canary+"4", list(t, d)["k"].Version)})
	note(errs, err)
	srv.SetPermissions()
	srv.FailNext(10, azurekvtest.Fault{Status: http.StatusServiceUnavailable})
	errs, err = d.Apply(bg, []destination.Change{put("k2", canary, "")})
	note(errs, err)
	_, err = d.List(bg)
	note(err, d)
	bad := open(t, srv, "owner", func(o *azurekv.Options) { o.ClientSecret = canary + "-wrong" })
	_, err = bad.List(bg)
	note(err, bad)
	o := azurekv.Options{ClientSecret: canary}
	note(o)
	for _, s := range seen {
		if strings.Contains(s, canary) {
			t.Fatalf("the canary leaked: %s", s)
		}
	}
}
