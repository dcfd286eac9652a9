package vercel_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/destination/vercel"
	"github.com/secretsync/secretsync/destination/vercel/verceltest"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
)

var bothTargets = []string{vercel.Production, vercel.Preview}

// open returns a destination over srv for owner, with targets
// {production, preview} unless mod changes them.
func open(t *testing.T, srv *verceltest.Server, mod func(*vercel.Options)) *vercel.Destination {
	t.Helper()
	o := vercel.Options{
		Token: "test-token", ProjectID: srv.ProjectID(), TeamID: srv.TeamID(), Targets: bothTargets,
		Owner: "owner-1", BaseURL: srv.URL, MinBackoff: time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	d, err := vercel.New(context.Background(), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mustApply(t *testing.T, d destination.Destination, changes ...destination.Change) {
	t.Helper()
	errs, err := d.Apply(context.Background(), changes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("Apply %v: %v", changes[i], e)
		}
	}
}

func applyOne(t *testing.T, d destination.Destination, c destination.Change) error {
	t.Helper()
	errs, err := d.Apply(context.Background(), []destination.Change{c})
	if err != nil {
		return err
	}
	return errs[0]
}

func list(t *testing.T, d destination.Destination) map[string]destination.Secret {
	t.Helper()
	m, err := d.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return m
}

// A second write of a key updates its variable in place: same id, one
// variable, and the client's upsert does the same for a create.
func TestUpsertUpdatesInPlace(t *testing.T) {
	ctx := context.Background()
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_a"})
	d := open(t, srv, nil)

	mustApply(t, d, destination.Change{Key: "API_KEY", Value: "v1"})
	first, ok := srv.Find("API_KEY", bothTargets)
	if !ok {
		t.Fatal("not created")
	}
	v1 := list(t, d)["API_KEY"]
	mustApply(t, d, destination.Change{Key: "API_KEY", Value: "v2", Expect: v1.Version})
	vars := srv.Vars()
	if len(vars) != 1 || vars[0].ID != first.ID || vars[0].Value != "v2" || vars[0].UpdatedAt <= first.UpdatedAt {
		t.Fatalf("after the update: %v (first %v)", vars, first)
	}
	if got := srv.Count(verceltest.OpCreate); got != 1 {
		t.Fatalf("%d creates, want 1", got)
	}
	if got := srv.Count(verceltest.OpEdit); got != 1 {
		t.Fatalf("%d edits, want 1", got)
	}

	// The client: a create over the same key and targets fails without
	// upsert and updates in place with it.
	c := d.Client()
	_, err := c.CreateEnv(ctx, srv.ProjectID(), vercel.NewEnvVar{Key: "API_KEY", Value: "v3", Type: vercel.TypeEncrypted, Target: bothTargets, Comment: vercel.Marker("owner-1")}, nil)
	var ae *vercel.APIError
	if !errors.As(err, &ae) || !ae.Conflict() || ae.Status != http.StatusBadRequest || ae.EnvVarID != first.ID {
		t.Fatalf("create over an existing key = %v, want 400 ENV_CONFLICT naming %s", err, first.ID)
	}
	got, err := c.CreateEnv(ctx, srv.ProjectID(), vercel.NewEnvVar{Key: "API_KEY", Value: "v3", Type: vercel.TypeEncrypted, Target: []string{vercel.Preview, vercel.Production}, Comment: vercel.Marker("owner-1")}, &vercel.CreateOptions{Upsert: true})
	if err != nil || got.ID != first.ID || got.Decrypted || got.Value == "v3" {
		t.Fatalf("upsert = %v, %v; want the same id, its value encrypted", got, err)
	}
	if vars := srv.Vars(); len(vars) != 1 || vars[0].Value != "v3" {
		t.Fatalf("after the upsert: %v", vars)
	}
	if m := list(t, d); m["API_KEY"].Value != "v3" {
		t.Fatal("the upserted value is not listed")
	}
	// An upsert whose targets only overlap is refused: Vercel updates
	// only a variable with exactly the same targets.
	_, err = c.CreateEnv(ctx, srv.ProjectID(), vercel.NewEnvVar{Key: "API_KEY", Value: "v4", Type: vercel.TypeEncrypted, Target: []string{vercel.Production}}, &vercel.CreateOptions{Upsert: true})
	if !errors.As(err, &ae) || !ae.Conflict() {
		t.Fatalf("upsert with overlapping targets = %v, want ENV_CONFLICT", err)
	}
	upserts := 0
	for _, r := range srv.Requests() {
		if r.Upsert {
			upserts++
		}
	}
	if upserts != 2 {
		t.Fatalf("%d requests with upsert=true, want the client's 2 (the destination creates without it)", upserts)
	}
}

// Every request carries teamId when the destination has a team, and none
// does when it has not.
func TestTeamIDOnEveryRequest(t *testing.T) {
	for _, team := range []string{"team_abc", ""} {
		srv := verceltest.New(t, &verceltest.Options{TeamID: team})
		d := open(t, srv, nil)
		mustApply(t, d, destination.Change{Key: "A", Value: "1"}, destination.Change{Key: "B", Value: "2"})
		m := list(t, d)
		mustApply(t, d, destination.Change{Key: "A", Value: "1b", Expect: m["A"].Version}, destination.Change{Key: "B", Delete: true, Expect: m["B"].Version})
		if err := applyOne(t, d, destination.Change{Key: "A", Value: "x"}); !errors.Is(err, destination.ErrConflict) {
			t.Fatalf("create over A = %v", err)
		}
		reqs := srv.Requests()
		if len(reqs) < 7 {
			t.Fatalf("%d requests", len(reqs))
		}
		for _, r := range reqs {
			if r.HasTeamID != (team != "") || r.TeamID != team {
				t.Errorf("team %q: %s %s carried teamId=%q (present %v)", team, r.Method, r.Path, r.TeamID, r.HasTeamID)
			}
			if r.Status >= 400 && r.Op != verceltest.OpCreate {
				t.Errorf("team %q: %s %s answered %d", team, r.Method, r.Path, r.Status)
			}
		}
	}
	// Without its team, the team's project is not found: a whole-store
	// error that stops Apply.
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_abc"})
	d := open(t, srv, func(o *vercel.Options) { o.TeamID = "" })
	if _, err := d.List(context.Background()); err == nil {
		t.Fatal("List without the team succeeded")
	}
	errs, err := d.Apply(context.Background(), []destination.Change{{Key: "A", Value: "1"}, {Key: "B", Value: "2"}})
	var ae *vercel.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || len(errs) != 2 || errs[1] == nil {
		t.Fatalf("Apply without the team = %v, %v", errs, err)
	}
	if got := srv.Count(verceltest.OpCreate); got != 1 {
		t.Fatalf("Apply went on after the project was not found: %d creates", got)
	}
}

// Sensitive values are never readable back, by any call; a write made at
// Vercel still shows, by its marker, and a sync reports it as drift.
func TestSensitiveWriteOnlyDriftByMarker(t *testing.T) {
	ctx := context.Background()
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_s"})
	d := open(t, srv, func(o *vercel.Options) { o.Type = vercel.TypeSensitive })
	if !d.Capabilities().WriteOnly || !d.Capabilities().NoCheckAndSet {
		t.Fatalf("capabilities %+v", d.Capabilities())
	}
	const canary = "canary-sensitive-7f3a"
	mustApply(t, d, destination.Change{Key: "TOKEN", Value: canary})
	v, ok := srv.Find("TOKEN", bothTargets)
	if !ok || v.Type != vercel.TypeSensitive || v.Value != canary {
		t.Fatalf("stored %v", v)
	}
	listed := list(t, d)["TOKEN"]
	if listed.Value != "" || listed.Version == "" {
		t.Fatalf("listed %v", listed)
	}
	c := d.Client()
	all, err := c.ListEnv(ctx, srv.ProjectID(), &vercel.ListOptions{Decrypt: true})
	if err != nil || len(all) != 1 || all[0].Value != "" || all[0].Decrypted {
		t.Fatalf("ListEnv(decrypt) = %v, %v", all, err)
	}
	one, err := c.GetEnv(ctx, srv.ProjectID(), v.ID)
	if err != nil || one.Value != "" || one.Decrypted {
		t.Fatalf("GetEnv = %v, %v", one, err)
	}

	// A sync over it: created, then idle, then drift.
	src := memory.New(map[string]string{"TOKEN": canary})
	srv2 := verceltest.New(t, nil)
	d2 := open(t, srv2, func(o *vercel.Options) { o.Type = vercel.TypeSensitive })
	s, err := sync.New(sync.Config{Name: "wo", Source: src, Destination: d2, Store: state.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	run := func() *sync.Report {
		t.Helper()
		rep, err := s.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); rep.Totals.Created != 1 {
		t.Fatalf("first round %+v", rep.Totals)
	}
	if rep := run(); rep.Totals.Changed() != 0 || rep.Totals.Conflicts != 0 {
		t.Fatalf("idle round %+v", rep.Totals)
	}
	w, _ := srv2.Find("TOKEN", bothTargets)
	srv2.Update(w.ID, "changed in the dashboard")
	rep := run()
	kr, ok := rep.Result("TOKEN")
	if !ok || kr.Action != sync.Conflict {
		t.Fatalf("after a write at Vercel: %+v", rep.Keys)
	}
	if w, _ := srv2.Find("TOKEN", bothTargets); w.Value != "changed in the dashboard" {
		t.Fatal("the drifted value was overwritten")
	}
}

// A 429 is retried after the time its X-RateLimit-Reset names; after the
// client's retries it is destination.ErrUnavailable.
func TestRateLimitHonoursReset(t *testing.T) {
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_r"})
	d := open(t, srv, func(o *vercel.Options) { o.MaxRetries = 2 })
	mustApply(t, d, destination.Change{Key: "A", Value: "1"})

	srv.ResetCounts()
	srv.RateLimitNext(verceltest.OpList, 1, 300*time.Millisecond)
	start := time.Now()
	// The reset is in epoch seconds: the retry may not come before it.
	resetAt := time.Unix(start.Add(300*time.Millisecond).Unix()+1, 0)
	if start.Add(300*time.Millisecond).Nanosecond() == 0 {
		resetAt = start.Add(300 * time.Millisecond)
	}
	m := list(t, d)
	if m["A"].Value != "1" {
		t.Fatalf("listed %v", m)
	}
	if got := srv.Count(verceltest.OpList); got != 2 {
		t.Fatalf("%d list requests, want 2", got)
	}
	if took := time.Since(start); time.Now().Before(resetAt) || took < 250*time.Millisecond {
		t.Fatalf("retried after %v, before the reset at %v", took, resetAt)
	}

	// Still limited after every retry: unavailable, with the 429 inside.
	srv.ResetCounts()
	srv.RateLimitNext(verceltest.OpGet, 3, 0)
	errs, err := d.Apply(context.Background(), []destination.Change{
		{Key: "A", Value: "2", Expect: m["A"].Version}, {Key: "B", Value: "x"},
	})
	var ae *vercel.APIError
	if !errors.Is(err, destination.ErrUnavailable) || !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || ae.Code != "rate_limited" {
		t.Fatalf("Apply under a rate limit = %v", err)
	}
	if len(errs) != 2 || !errors.Is(errs[0], destination.ErrUnavailable) || !errors.Is(errs[1], destination.ErrUnavailable) {
		t.Fatalf("results %v", errs)
	}
	if got := srv.Count(""); got != 3 {
		t.Fatalf("%d requests, want 3 (1 + 2 retries) and none for the second change", got)
	}

	// A wait longer than MaxWait is not made.
	srv.ResetCounts()
	d3 := open(t, srv, func(o *vercel.Options) { o.MaxWait = 100 * time.Millisecond })
	srv.RateLimitNext(verceltest.OpList, 1, 10*time.Second)
	start = time.Now()
	if _, err := d3.List(context.Background()); !errors.Is(err, destination.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("List with a long reset = %v after %v", err, time.Since(start))
	}
	if got := srv.Count(verceltest.OpList); got != 1 {
		t.Fatalf("%d list requests, want 1", got)
	}
}

// 5xx answers are retried for idempotent calls; a plain create is not
// retried (it may have been applied), and is unavailable.
func TestServerErrorsRetried(t *testing.T) {
	srv := verceltest.New(t, nil)
	d := open(t, srv, nil)
	mustApply(t, d, destination.Change{Key: "A", Value: "1"})
	m := list(t, d)

	srv.ResetCounts()
	srv.FailNext(verceltest.OpGet, 2, http.StatusServiceUnavailable)
	srv.FailNext(verceltest.OpEdit, 1, http.StatusBadGateway)
	mustApply(t, d, destination.Change{Key: "A", Value: "2", Expect: m["A"].Version})
	if c := srv.Counts(); c[verceltest.OpGet] != 3 || c[verceltest.OpEdit] != 2 {
		t.Fatalf("counts %v", c)
	}

	srv.ResetCounts()
	srv.FailNext(verceltest.OpCreate, 1, http.StatusInternalServerError)
	errs, err := d.Apply(context.Background(), []destination.Change{{Key: "B", Value: "1"}, {Key: "C", Value: "1"}})
	if !errors.Is(err, destination.ErrUnavailable) || !errors.Is(errs[0], destination.ErrUnavailable) || !errors.Is(errs[1], destination.ErrUnavailable) {
		t.Fatalf("Apply after a 500 on create = %v, %v", errs, err)
	}
	if got := srv.Count(verceltest.OpCreate); got != 1 {
		t.Fatalf("%d creates, want 1 (not retried)", got)
	}

	// No server at all: unavailable.
	srv.Close()
	if _, err := d.List(context.Background()); !errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("List with no server = %v", err)
	}
}

// A variable of someone else with the same key and a target in common is
// never overwritten nor deleted; one with other targets does not stand in
// the way.
func TestSomeoneElsesVariableRefused(t *testing.T) {
	srv := verceltest.New(t, &verceltest.Options{TeamID: "team_o"})
	d := open(t, srv, nil)
	theirs, err := srv.Create(verceltest.Var{Key: "DB_URL", Value: "theirs", Type: vercel.TypeEncrypted, Target: []string{vercel.Production}, Comment: "set by hand"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := srv.Create(verceltest.Var{Key: "DB_URL", Value: "dev", Type: vercel.TypeEncrypted, Target: []string{vercel.Development}})
	if err != nil {
		t.Fatal(err)
	}
	if m := list(t, d); len(m) != 0 {
		t.Fatalf("listed %v, want none of someone else's", m)
	}
	for _, c := range []destination.Change{
		{Key: "DB_URL", Value: "ours"},
		{Key: "DB_URL", Delete: true},
		{Key: "DB_URL", Value: "ours", Expect: theirs.ID + ":" + itoa(theirs.UpdatedAt)},
		{Key: "DB_URL", Delete: true, Expect: theirs.ID + ":" + itoa(theirs.UpdatedAt)},
	} {
		err := applyOne(t, d, c)
		var ke *destination.KeyError
		if !errors.Is(err, destination.ErrNotOwned) && !(c.Expect != "" && !c.Delete && errors.Is(err, destination.ErrConflict)) || !errors.As(err, &ke) {
			t.Fatalf("%v = %v, want ErrNotOwned", c, err)
		}
		if strings.Contains(err.Error(), "theirs") || strings.Contains(err.Error(), "ours") {
			t.Fatalf("the error holds a value: %v", err)
		}
	}
	if got, _ := srv.Get(theirs.ID); got.Value != "theirs" || got.UpdatedAt != theirs.UpdatedAt {
		t.Fatalf("their variable changed: %v", got)
	}
	// Another owner's marker is not ours either.
	d2 := open(t, srv, func(o *vercel.Options) { o.Owner = "owner-2"; o.Targets = []string{vercel.Preview} })
	mustApply(t, d2, destination.Change{Key: "SHARED", Value: "2"})
	if err := applyOne(t, d, destination.Change{Key: "SHARED", Value: "1"}); !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("create over another owner's variable = %v", err)
	}
	// The development variable stays apart: a destination on development
	// only is blocked by it, one on preview alone is not.
	d3 := open(t, srv, func(o *vercel.Options) { o.Targets = []string{vercel.Development} })
	if err := applyOne(t, d3, destination.Change{Key: "DB_URL", Value: "x"}); !errors.Is(err, destination.ErrNotOwned) {
		t.Fatalf("create over the development variable = %v", err)
	}
	d4 := open(t, srv, func(o *vercel.Options) { o.Targets = []string{vercel.Preview} })
	mustApply(t, d4, destination.Change{Key: "DB_URL", Value: "preview"})
	if got, _ := srv.Get(other.ID); got.Value != "dev" {
		t.Fatal("the development variable changed")
	}
	if n := len(srv.Vars()); n != 4 {
		t.Fatalf("%d variables, want 4", n)
	}
}

// A wrong token stops Apply at once: every change gets the error.
func TestForbiddenStopsApply(t *testing.T) {
	srv := verceltest.New(t, nil)
	d := open(t, srv, func(o *vercel.Options) { o.Token = "wrong" })
	errs, err := d.Apply(context.Background(), []destination.Change{{Key: "A", Value: "1"}, {Key: "B", Value: "2"}})
	var ae *vercel.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || errors.Is(err, destination.ErrUnavailable) {
		t.Fatalf("Apply with a wrong token = %v", err)
	}
	if len(errs) != 2 || !errors.As(errs[1], &ae) {
		t.Fatalf("results %v", errs)
	}
	if got := srv.Count(""); got != 1 {
		t.Fatalf("%d requests, want 1", got)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the error holds the token: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
