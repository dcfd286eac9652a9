package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
)

func put(key, value, expect string) destination.Change {
	return destination.Change{Key: key, Value: value, Expect: expect}
}

func del(key, expect string) destination.Change {
	return destination.Change{Key: key, Delete: true, Expect: expect}
}

// applyOne applies c and returns its result; a call error fails the test.
func applyOne(t *testing.T, d *awssm.Destination, c destination.Change) error {
	t.Helper()
	errs, err := d.Apply(context.Background(), []destination.Change{c})
	if err != nil {
		t.Fatalf("Apply(%v): %v", c, err)
	}
	return errs[0]
}

func mustApply(t *testing.T, d *awssm.Destination, cs ...destination.Change) {
	t.Helper()
	errs, err := d.Apply(context.Background(), cs)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("Apply(%v): %v", cs[i], e)
		}
	}
}

func list(t *testing.T, d *awssm.Destination) map[string]destination.Secret {
	t.Helper()
	m, err := d.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// requestsOf returns the requests srv received for op.
func requestsOf(srv *awssmtest.Server, op string) []awssmtest.Request {
	var out []awssmtest.Request
	for _, r := range srv.Requests() {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// A write whose response is lost (the server makes the change, then
// answers 500) is retried by the SDK with the same ClientRequestToken,
// and the retry makes no second version.
func TestRetriedWriteReusesToken(t *testing.T) {
	for _, op := range []string{"CreateSecret", "PutSecretValue"} {
		t.Run(op, func(t *testing.T) {
			srv := newServer(t, awssmtest.Options{})
			d := open(t, options(srv, "o"))
			expect := ""
			if op == "PutSecretValue" {
				mustApply(t, d, put("app/key", "v0", ""))
				expect = list(t, d)["app/key"].Version
			}
			srv.ResetCounts()
			srv.Inject(awssmtest.Fault{Op: op, AfterApply: true})
			mustApply(t, d, put("app/key", "v1", expect))

			reqs := requestsOf(srv, op)
			if len(reqs) != 2 || reqs[0].Status != http.StatusInternalServerError || reqs[1].Status != http.StatusOK {
				t.Fatalf("%s requests: %+v, want a 500 then a 200", op, reqs)
			}
			if reqs[0].ClientRequestToken == "" || reqs[0].ClientRequestToken != reqs[1].ClientRequestToken {
				t.Fatalf("the retry carried token %q, the first attempt %q", reqs[1].ClientRequestToken, reqs[0].ClientRequestToken)
			}
			got, _ := srv.Get("app/key")
			wantVersions := 1
			if op == "PutSecretValue" {
				wantVersions = 2
			}
			if got.Value != "v1" || got.Versions != wantVersions || got.VersionID != reqs[0].ClientRequestToken {
				t.Fatalf("after the retried %s: value ok %v, %d versions (want %d), current %s", op, got.Value == "v1", got.Versions, wantVersions, got.VersionID)
			}
			if v := list(t, d)["app/key"]; v.Version != reqs[0].ClientRequestToken {
				t.Fatalf("listed version %q, want the token %q", v.Version, reqs[0].ClientRequestToken)
			}
		})
	}
}

// Every write carries a fresh token: two writes of one value make two
// versions.
func TestFreshTokenPerWrite(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	mustApply(t, d, put("k", "same", ""))
	v1 := list(t, d)["k"].Version
	mustApply(t, d, put("k", "same", v1))
	v2 := list(t, d)["k"].Version
	if v1 == v2 {
		t.Fatal("two writes got one version")
	}
	if got, _ := srv.Get("k"); got.Versions != 2 || got.PreviousVersionID != v1 {
		t.Fatalf("%+v", got)
	}
}

// List reads values with BatchGetSecretValue, 20 a call, after listing
// the owned secrets with ListSecrets: fewer requests than keys.
func TestListUsesBatchGet(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	const n = 45
	for i := range n {
		srv.Put(fmt.Sprintf("k/%02d", i), fmt.Sprint("v", i), owned("o"))
	}
	srv.Put("theirs", "x", nil)
	srv.Put("other-sync", "x", owned("o2"))
	srv.ResetCounts()
	m := list(t, d)
	if len(m) != n || m["k/07"].Value != "v7" {
		t.Fatalf("List returned %d keys", len(m))
	}
	c := srv.Counts()
	if c["ListSecrets"] != 1 || c["BatchGetSecretValue"] != 3 || c["GetSecretValue"] != 0 || c["DescribeSecret"] != 0 {
		t.Fatalf("requests: %v", c)
	}
	if per := float64(srv.Count("")) / n; per >= 1 {
		t.Fatalf("%.2f requests per listed key", per)
	}
}

// List pages through ListSecrets: 120 secrets take two pages of 100, and a
// server that cuts pages short (as AWS may) takes more.
func TestListPaginates(t *testing.T) {
	for _, tc := range []struct {
		maxPage, wantPages int
	}{{0, 2}, {7, 18}} {
		srv := newServer(t, awssmtest.Options{MaxPageSize: tc.maxPage})
		d := open(t, options(srv, "o"))
		for i := range 120 {
			srv.Put(fmt.Sprintf("p/%03d", i), "v", owned("o"))
		}
		srv.ResetCounts()
		if m := list(t, d); len(m) != 120 {
			t.Fatalf("MaxPageSize %d: List returned %d of 120", tc.maxPage, len(m))
		}
		if got := srv.Count("ListSecrets"); got != tc.wantPages {
			t.Fatalf("MaxPageSize %d: %d ListSecrets requests, want %d", tc.maxPage, got, tc.wantPages)
		}
		if got := srv.Count("BatchGetSecretValue"); got != 6 {
			t.Fatalf("%d BatchGetSecretValue requests, want 6", got)
		}
	}
}

// A name of ours scheduled for deletion is restored, then written; one of
// someone else's is left alone.
func TestRestoreBeforeReuse(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	mustApply(t, d, put("app/db", "old", ""))
	old := list(t, d)["app/db"].Version
	mustApply(t, d, del("app/db", old))
	if got, ok := srv.Get("app/db"); !ok || !got.Deleted {
		t.Fatalf("after the delete: %+v, %v; want scheduled for deletion", got, ok)
	}
	if _, ok := list(t, d)["app/db"]; ok {
		t.Fatal("a secret scheduled for deletion is listed")
	}
	srv.ResetCounts()
	mustApply(t, d, put("app/db", "new", ""))
	if c := srv.Counts(); c["RestoreSecret"] != 1 || c["PutSecretValue"] != 1 {
		t.Fatalf("requests: %v", c)
	}
	got, _ := srv.Get("app/db")
	if got.Deleted || got.Value != "new" || got.PreviousVersionID != old {
		t.Fatalf("after the reuse: deleted %v, new value %v, previous %q (want %q)", got.Deleted, got.Value == "new", got.PreviousVersionID, old)
	}
	if v := list(t, d)["app/db"]; v.Value != "new" || v.Version == old {
		t.Fatalf("listed %v", v)
	}

	// Someone else's name, scheduled for deletion: not ours to restore.
	srv.Put("theirs", "x", nil)
	srv.Delete("theirs", false)
	if err := applyOne(t, d, put("theirs", "y", "")); !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("create over someone else's deleted secret: %v", err)
	}
	if got, _ := srv.Get("theirs"); !got.Deleted {
		t.Fatal("someone else's secret was restored")
	}
}

// The recovery window of the config (default 30 days), or deletion
// without recovery.
func TestDeletionModes(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		window   int
		force    bool
		wantDays int
	}{{"default", 0, false, 30}, {"7 days", 7, false, 7}, {"force", 0, true, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, awssmtest.Options{Now: func() time.Time { return now }})
			o := options(srv, "o")
			o.RecoveryWindowDays, o.ForceDelete = tc.window, tc.force
			d := open(t, o)
			mustApply(t, d, put("gone", "v", ""))
			mustApply(t, d, del("gone", list(t, d)["gone"].Version))
			got, ok := srv.Get("gone")
			switch {
			case tc.force && ok:
				t.Fatalf("a forced delete left the secret: %+v", got)
			case !tc.force && (!ok || !got.Deleted || !got.PurgeAt.Equal(now.AddDate(0, 0, tc.wantDays))):
				t.Fatalf("got %+v, %v; want deleted with a %d-day window", got, ok, tc.wantDays)
			}
			// Deleting again is a success.
			mustApply(t, d, del("gone", "whatever"))
		})
	}
	if _, err := awssm.New(context.Background(), &awssm.Options{Region: "us-east-1", RecoveryWindowDays: 7, ForceDelete: true}); !errors.Is(err, awssm.ErrInvalidOptions) {
		t.Fatalf("a window and force together: %v", err)
	}
	if _, err := awssm.New(context.Background(), &awssm.Options{Region: "us-east-1", RecoveryWindowDays: 31}); !errors.Is(err, awssm.ErrInvalidOptions) {
		t.Fatalf("a 31-day window: %v", err)
	}
}

// A writer that gets in between the read and the write is detected by
// the check of the version replaced, and reported as a conflict.
func TestConflictAfterWrite(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	mustApply(t, d, put("race", "ours-1", ""))
	read := list(t, d)["race"].Version
	var theirs string
	srv.Inject(awssmtest.Fault{Op: "PutSecretValue", Hook: func() { theirs = srv.Put("race", "theirs", nil) }})
	err := applyOne(t, d, put("race", "ours-2", read))
	if !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("a write over another writer's version: %v, want ErrConflict", err)
	}
	// Their value is kept as AWSPREVIOUS: nothing is lost, and the next
	// round sees a version it did not write.
	if got, _ := srv.Get("race"); got.PreviousVersionID != theirs {
		t.Fatalf("AWSPREVIOUS is %q, want theirs %q", got.PreviousVersionID, theirs)
	}

	// The same for a delete: the secret is restored.
	read = list(t, d)["race"].Version
	srv.Inject(awssmtest.Fault{Op: "DeleteSecret", Hook: func() { theirs = srv.Put("race", "theirs-2", nil) }})
	if err := applyOne(t, d, del("race", read)); !errors.Is(err, destination.ErrConflict) {
		t.Fatalf("a delete over another writer's version: %v, want ErrConflict", err)
	}
	if got, _ := srv.Get("race"); got.Deleted || got.Value != "theirs-2" {
		t.Fatalf("after the conflicting delete: deleted %v, their value %v", got.Deleted, got.Value == "theirs-2")
	}
}

// Throttling after the SDK's retries, 5xx and an unreachable endpoint
// are destination.ErrUnavailable, and stop Apply.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault awssmtest.Fault
	}{
		{"throttled", awssmtest.Fault{Status: http.StatusBadRequest, Times: 100}},
		{"500", awssmtest.Fault{Status: http.StatusInternalServerError, Times: 100}},
		{"503", awssmtest.Fault{Status: http.StatusServiceUnavailable, Times: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, awssmtest.Options{})
			d := open(t, options(srv, "o"))
			mustApply(t, d, put("a", "1", ""))
			v := list(t, d)["a"].Version
			srv.ResetCounts()
			srv.Inject(tc.fault)
			errs, err := d.Apply(context.Background(), []destination.Change{put("a", "2", v), put("b", "1", "")})
			if !errors.Is(err, destination.ErrUnavailable) || len(errs) != 2 || !errors.Is(errs[0], destination.ErrUnavailable) || !errors.Is(errs[1], destination.ErrUnavailable) {
				t.Fatalf("Apply = %v, %v; want ErrUnavailable for both and the call", errs, err)
			}
			if got := srv.Count(""); got != 3 {
				t.Fatalf("%d requests, want 3 (one operation, retried twice by the SDK)", got)
			}
			if _, err := d.List(context.Background()); !errors.Is(err, destination.ErrUnavailable) {
				t.Fatalf("List = %v, want ErrUnavailable", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := newServer(t, awssmtest.Options{})
		d := open(t, options(srv, "o"))
		srv.Close()
		if _, err := d.List(context.Background()); !errors.Is(err, destination.ErrUnavailable) {
			t.Fatalf("List = %v, want ErrUnavailable", err)
		}
		if _, err := d.Apply(context.Background(), []destination.Change{put("a", "1", "")}); !errors.Is(err, destination.ErrUnavailable) {
			t.Fatalf("Apply = %v, want ErrUnavailable", err)
		}
	})
	t.Run("throttled once", func(t *testing.T) {
		srv := newServer(t, awssmtest.Options{})
		d := open(t, options(srv, "o"))
		srv.Inject(awssmtest.Fault{Status: http.StatusBadRequest})
		mustApply(t, d, put("a", "1", ""))
	})
}

// A secret someone else created, or another sync, is neither listed nor
// written nor deleted.
func TestOwnership(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "sync-a"))
	srv.Put("theirs", "x", map[string]string{awssm.TagManagedBy: awssm.ManagedByValue}) // no owner
	srv.Put("sync-b", "y", owned("sync-b"))
	if m := list(t, d); len(m) != 0 {
		t.Fatalf("List = %v", m)
	}
	for _, c := range []destination.Change{put("theirs", "z", ""), put("sync-b", "z", ""), del("theirs", ""), put("sync-b", "z", "v")} {
		if err := applyOne(t, d, c); !errors.Is(err, destination.ErrNotOwned) {
			t.Fatalf("%v = %v, want ErrNotOwned", c, err)
		}
	}
	if got, _ := srv.Get("theirs"); got.Value != "x" || got.Versions != 1 {
		t.Fatalf("the unowned secret changed")
	}
	// A destination without an owner marks secrets as the library's
	// only, and does not see sync-b's.
	anon := open(t, options(srv, ""))
	mustApply(t, anon, put("anon", "1", ""))
	if m := list(t, anon); len(m) != 1 || m["anon"].Value != "1" {
		t.Fatalf("List without owner = %v", m)
	}
	if got, _ := srv.Get("anon"); got.Tags[awssm.TagOwner] != "" || got.Tags[awssm.TagManagedBy] != awssm.ManagedByValue {
		t.Fatalf("tags = %v", got.Tags)
	}
}

// Options.Tags go on every secret created, and back on a secret written
// when someone changed them; other tags stay.
func TestCustomTags(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	o := options(srv, "o")
	o.Tags = map[string]string{"team": "payments", "env": "prod"}
	d := open(t, o)
	mustApply(t, d, put("t", "1", ""))
	got, _ := srv.Get("t")
	want := map[string]string{"team": "payments", "env": "prod", awssm.TagManagedBy: awssm.ManagedByValue, awssm.TagOwner: "o"}
	if fmt.Sprint(got.Tags) != fmt.Sprint(want) {
		t.Fatalf("tags = %v, want %v", got.Tags, want)
	}
	tags := got.Tags
	tags["env"], tags["note"] = "staging", "kept"
	srv.SetTags("t", tags)
	srv.ResetCounts()
	mustApply(t, d, put("t", "2", list(t, d)["t"].Version))
	got, _ = srv.Get("t")
	if got.Tags["env"] != "prod" || got.Tags["note"] != "kept" || srv.Count("TagResource") != 1 {
		t.Fatalf("tags = %v after %d TagResource", got.Tags, srv.Count("TagResource"))
	}
	// Unchanged tags cost no request.
	srv.ResetCounts()
	mustApply(t, d, put("t", "3", list(t, d)["t"].Version))
	if srv.Count("TagResource") != 0 {
		t.Fatal("TagResource sent for unchanged tags")
	}
	for _, bad := range []map[string]string{
		{"aws:x": "v"}, {awssm.TagOwner: "v"}, {"k": strings.Repeat("v", 257)}, {"bad\x00key": "v"},
	} {
		o.Tags = bad
		if _, err := awssm.New(context.Background(), &o); !errors.Is(err, awssm.ErrInvalidOptions) {
			t.Errorf("Tags %q: %v, want ErrInvalidOptions", bad, err)
		}
	}
}

// Keys and values AWS cannot hold are refused before any request.
func TestRefusedBeforeSending(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	for _, c := range []destination.Change{
		put("has space", "v", ""), put("colon:x", "v", ""), put(strings.Repeat("n", 513), "v", ""), put("ünïcode", "v", ""), put("a//b", "v", ""),
	} {
		if err := applyOne(t, d, c); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("%v = %v, want ErrInvalidKey", c, err)
		}
	}
	for _, v := range []string{"", strings.Repeat("x", 65537), "bad\xff"} {
		if err := applyOne(t, d, put("k", v, "")); !errors.Is(err, destination.ErrInvalidValue) {
			t.Errorf("a value of %d bytes = %v, want ErrInvalidValue", len(v), err)
		} else if strings.Contains(err.Error(), "bad\xff") {
			t.Error("the error holds the value")
		}
	}
	if n := srv.Count(""); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
	if err := applyOne(t, d, put(strings.Repeat("n", 512), strings.Repeat("x", 65536), "")); err != nil {
		t.Fatalf("a 512-byte name with a 64 KiB value: %v", err)
	}
}

func TestNormalizeKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"vault/kv_1a2b/app/prod", "vault/kv_1a2b/app/prod"},
		{"APP_DB-URL.v2@x+y=z", "APP_DB-URL.v2@x+y=z"},
		{"with space:and#hash", "with_space_and_hash"},
		{"/lead//double/trail/", "lead/double/trail"},
		{"a/./b/../c", "a/_/b/__/c"},
		{"ünï", "_n_"},
		{"bad\xffutf8", "bad_utf8"},
		{"...", "..."},
	} {
		got, err := awssm.NormalizeKey(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		if again, err := awssm.NormalizeKey(got); err != nil || again != got {
			t.Errorf("NormalizeKey is not idempotent on %q: %q, %v", got, again, err)
		}
		if err := awssm.CheckKey(got); err != nil {
			t.Errorf("NormalizeKey(%q) = %q, which CheckKey refuses: %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"", "/", "//", strings.Repeat("x", 513)} {
		if _, err := awssm.NormalizeKey(bad); !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("NormalizeKey(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{"vault/kv/app", "a//b", "../x", "ü", "\xff", "a b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		got, err := awssm.NormalizeKey(key)
		if err != nil {
			if !errors.Is(err, destination.ErrInvalidKey) {
				t.Fatalf("NormalizeKey(%q): %v", key, err)
			}
			return
		}
		if err := awssm.CheckKey(got); err != nil {
			t.Fatalf("NormalizeKey(%q) = %q, refused by CheckKey: %v", key, got, err)
		}
		if again, err := awssm.NormalizeKey(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", key, got, again, err)
		}
	})
}

func TestOptions(t *testing.T) {
	ctx := context.Background()
	for _, o := range []awssm.Options{
		{Region: "us-east-1", AccessKeyID: "AKIA"},
		{AccessKeyID: "AKIA", SecretAccessKey: "s"},
		{Region: "us-east-1", Owner: "bad\nowner"},
	} {
		if _, err := awssm.New(ctx, &o); !errors.Is(err, awssm.ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v, want ErrInvalidOptions", o.Owner, err)
		} else if strings.Contains(err.Error(), "AKIA") {
			t.Errorf("the error names the key: %v", err)
		}
	}
	d := open(t, awssm.Options{Region: "us-east-1", AccessKeyID: "AKIA", SecretAccessKey: "s"})
	if c := d.Capabilities(); !c.NoCheckAndSet || c.WriteOnly || c.Atomic {
		t.Fatalf("Capabilities = %+v", c)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(ctx); err == nil {
		t.Fatal("List after Close succeeded")
	}
}

// A write that fails after its name was restored schedules the secret for
// deletion again, rather than leave the old value current.
func TestRestoreThenFailedWrite(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	mustApply(t, d, put("r", "old", ""))
	mustApply(t, d, del("r", list(t, d)["r"].Version))
	srv.Inject(awssmtest.Fault{Op: "PutSecretValue", Times: 3})
	errs, err := d.Apply(context.Background(), []destination.Change{put("r", "new", "")})
	if !errors.Is(err, destination.ErrUnavailable) || !errors.Is(errs[0], destination.ErrUnavailable) {
		t.Fatalf("Apply = %v, %v; want ErrUnavailable", errs, err)
	}
	if got, _ := srv.Get("r"); !got.Deleted || got.Value != "old" {
		t.Fatalf("after the failed write: deleted %v, old value %v", got.Deleted, got.Value == "old")
	}
	if srv.Count("RestoreSecret") != 1 || srv.Count("DeleteSecret") != 2 {
		t.Fatalf("requests: %v", srv.Counts())
	}
	// The next round gets it right.
	mustApply(t, d, put("r", "new", ""))
	if got, _ := srv.Get("r"); got.Deleted || got.Value != "new" {
		t.Fatalf("after the retry: deleted %v, new value %v", got.Deleted, got.Value == "new")
	}
}

// A deadline that passes while AWS does not answer ends Apply and List
// promptly, with the context's error.
func TestDeadline(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	srv.Inject(awssmtest.Fault{Delay: time.Minute, Times: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	errs, err := d.Apply(ctx, []destination.Change{put("a", "1", ""), put("b", "1", "")})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(errs[0], context.DeadlineExceeded) || !errors.Is(errs[1], context.DeadlineExceeded) {
		t.Fatalf("Apply = %v, %v", errs, err)
	}
	if _, err := d.List(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("List = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

// No value reaches an error, whatever the change's fate.
func TestValuesNotInErrors(t *testing.T) {
	const canary = "canary-2b9d41"
	srv := newServer(t, awssmtest.Options{})
	d := open(t, options(srv, "o"))
	srv.Put("theirs", "x", nil)
	mustApply(t, d, put("mine", canary, ""))
	v := list(t, d)["mine"].Version
	srv.Inject(awssmtest.Fault{Op: "PutSecretValue", Hook: func() { srv.Put("mine", "other", nil) }})
	var all []error
	for _, c := range []destination.Change{put("theirs", canary, ""), put("mine", canary, ""), put("mine", canary+"2", v), put("bad key", canary, "")} {
		all = append(all, applyOne(t, d, c))
	}
	srv.Inject(awssmtest.Fault{Times: 3})
	errs, err := d.Apply(context.Background(), []destination.Change{put("x", canary, "")})
	all = append(all, err, errs[0])
	for i, e := range all {
		if e == nil {
			t.Fatalf("error %d is nil", i)
		}
		if strings.Contains(e.Error(), canary) || strings.Contains(fmt.Sprintf("%#v", e), canary) {
			t.Fatalf("error %d holds the value: %v", i, e)
		}
	}
}
