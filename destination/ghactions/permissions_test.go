package ghactions_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v84/github"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/ghactions"
	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
)

// documented is what the package documentation says a token needs for
// one location.
type documented struct {
	perms  map[string]ghactionstest.Access // fine-grained
	titles map[string]string               // permission → its title in the documentation
	scopes []string                        // classic
}

// docPermissions reads the table of "# Token and permissions" in doc.go,
// so that the test proves what the documentation says, and fails when
// the documentation names a permission it does not know.
func docPermissions(t *testing.T) map[ghactions.Location]documented {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	start := slices.IndexFunc(lines, func(l string) bool {
		return regexp.MustCompile(`^//\tlocation\s+fine-grained permissions\s+classic scope$`).MatchString(l)
	})
	if start < 0 {
		t.Fatal("doc.go has no table of permissions")
	}
	out := map[ghactions.Location]documented{}
	var loc ghactions.Location
	for _, l := range lines[start+1:] {
		row, ok := strings.CutPrefix(l, "//\t")
		if !ok {
			break
		}
		cols := regexp.MustCompile(`\s{2,}`).Split(row, -1)
		if cols[0] != "" {
			loc = ghactions.Location(cols[0])
			out[loc] = documented{perms: map[string]ghactionstest.Access{}, titles: map[string]string{}}
		}
		if len(cols) < 2 {
			t.Fatalf("doc.go: row %q", row)
		}
		title, level, _ := strings.Cut(cols[1], ": ")
		perm := map[string]string{"Secrets": ghactionstest.PermSecrets, "Environments": ghactionstest.PermEnvironments, "Metadata": ghactionstest.PermMetadata}[title]
		if loc == ghactions.OrganizationSecrets && title == "Secrets" {
			perm = ghactionstest.PermOrganizationSecrets
		}
		access := map[string]ghactionstest.Access{"Read-only": ghactionstest.Read, "Read and write": ghactionstest.Write}[level]
		if perm == "" || access == "" {
			t.Fatalf("doc.go names a permission %q that the test does not know", cols[1])
		}
		d := out[loc]
		d.perms[perm], d.titles[perm] = access, title
		if len(cols) > 2 {
			d.scopes = append(d.scopes, cols[2])
		}
		out[loc] = d
	}
	for _, l := range []ghactions.Location{ghactions.RepositorySecrets, ghactions.EnvironmentSecrets, ghactions.OrganizationSecrets} {
		if d := out[l]; len(d.perms) == 0 || len(d.scopes) == 0 {
			t.Fatalf("doc.go's table has no permissions or no scope for %s: %v", l, d)
		}
	}
	return out
}

// permCycle runs a whole cycle through a fresh Destination, with a token
// that has g, over a fresh place of loc: list, create, list, update,
// list, delete, list. It returns the first error; it fails the test when
// a step succeeds but leaves the wrong state behind.
func permCycle(t *testing.T, srv *ghactionstest.Server, loc ghactions.Location, g ghactionstest.Grant) error {
	t.Helper()
	ctx := context.Background()
	token := fmt.Sprintf("github_pat_cycle%04d", repoSeq.Add(1))
	srv.AddToken(token, g)
	opts, sc := place(srv, loc)
	opts.Token = token
	d, err := ghactions.New(ctx, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	apply := func(c destination.Change) error {
		errs, err := d.Apply(ctx, []destination.Change{c})
		return errors.Join(err, errs[0])
	}
	list := func() (string, error) {
		m, err := d.List(ctx)
		return m["K"].Version, err
	}
	holds := func(step, want string) {
		t.Helper()
		s, ok := sc.Get("K")
		if ok != (want != "") || s.Value != want {
			t.Fatalf("after %s the server holds %v (%v), want %q", step, s, ok, want)
		}
	}
	if _, err := list(); err != nil {
		return err
	}
	if err := apply(put("K", "v1", "")); err != nil {
		return err
	}
	holds("the create", "v1")
	v, err := list()
	if err != nil {
		return err
	}
	if err := apply(put("K", "v2", v)); err != nil {
		return err
	}
	holds("the update", "v2")
	if v, err = list(); err != nil {
		return err
	}
	if err := apply(del("K", v)); err != nil {
		return err
	}
	holds("the delete", "")
	if v, err = list(); err != nil || v != "" {
		return fmt.Errorf("list after the delete: %q, %w", v, err)
	}
	return nil
}

// place adds a fresh place of secrets of loc to srv and returns the
// options (without a token) that name it.
func place(srv *ghactionstest.Server, loc ghactions.Location) (ghactions.Options, *ghactionstest.Secrets) {
	n := repoSeq.Add(1)
	opts := ghactions.Options{BaseURL: srv.URL, Location: loc}
	switch loc {
	case ghactions.OrganizationSecrets:
		opts.Organization = fmt.Sprintf("org-%d", n)
		return opts, srv.AddOrganization(opts.Organization)
	case ghactions.EnvironmentSecrets:
		opts.Owner, opts.Repository, opts.Environment = "acme", fmt.Sprintf("repo-%d", n), "prod"
		return opts, srv.AddRepository(opts.Owner, opts.Repository).AddEnvironment(opts.Environment)
	default:
		opts.Owner, opts.Repository = "acme", fmt.Sprintf("repo-%d", n)
		return opts, srv.AddRepository(opts.Owner, opts.Repository).Secrets()
	}
}

func refusal(err error) (int, string) {
	var er *github.ErrorResponse
	if !errors.As(err, &er) {
		return 0, ""
	}
	return er.Response.StatusCode, er.Message
}

// TestTokenPermissions proves the table of "Token and permissions" in
// the package documentation against ghactionstest, which checks each
// request as GitHub's REST documentation says GitHub does: with exactly
// the documented permissions (or scope) a whole cycle works and sends
// every kind of request the destination has; without any one of them it
// fails with an error that names what is needed, never the token; and
// with Read-only instead of Read and write it fails at the first write,
// having written nothing.
func TestTokenPermissions(t *testing.T) {
	doc := docPermissions(t)
	srv := newServer(t, ghactionstest.Options{})
	for _, loc := range []ghactions.Location{ghactions.RepositorySecrets, ghactions.EnvironmentSecrets, ghactions.OrganizationSecrets} {
		want := doc[loc]
		t.Run(string(loc), func(t *testing.T) {
			for _, kind := range []ghactionstest.TokenKind{ghactionstest.FineGrained, ghactionstest.Installation} {
				refused := "Resource not accessible by personal access token"
				if kind == ghactionstest.Installation {
					refused = "Resource not accessible by integration"
				}
				srv.ResetCounts()
				if err := permCycle(t, srv, loc, ghactionstest.Grant{Kind: kind, Permissions: want.perms}); err != nil {
					t.Fatalf("%v with the documented permissions %v: %v", kind, want.perms, err)
				}
				ops := []ghactionstest.Op{ghactionstest.OpGetPublicKey, ghactionstest.OpListSecrets, ghactionstest.OpGetSecret, ghactionstest.OpPutSecret, ghactionstest.OpDeleteSecret}
				if loc == ghactions.EnvironmentSecrets {
					ops = append(ops, ghactionstest.OpGetRepository)
				}
				for _, op := range ops {
					if srv.Count(op) == 0 {
						t.Fatalf("the cycle sent no %s request: it proves nothing of it", op)
					}
				}

				for perm := range want.perms {
					less := maps.Clone(want.perms)
					delete(less, perm)
					err := permCycle(t, srv, loc, ghactionstest.Grant{Kind: kind, Permissions: less})
					status, msg := refusal(err)
					if err == nil || status != http.StatusForbidden || msg != refused {
						t.Fatalf("%v without %s: %v; want 403 %q (the documentation says it is needed)", kind, perm, err, refused)
					}
					if s := err.Error(); !strings.Contains(s, `permission "`+want.titles[perm]+": ") || !strings.Contains(s, "X-Accepted-GitHub-Permissions: ") || strings.Contains(s, "github_pat_") {
						t.Fatalf("%v without %s, the error does not say what is needed (or shows the token): %s", kind, perm, s)
					}
				}

				for perm, access := range want.perms {
					if access != ghactionstest.Write {
						continue
					}
					readOnly := maps.Clone(want.perms)
					readOnly[perm] = ghactionstest.Read
					firstWriteFails(t, srv, loc, ghactionstest.Grant{Kind: kind, Permissions: readOnly}, `permission "`+want.titles[perm]+`: Read and write"`)
				}
			}

			// Classic tokens: the scope, and nothing else.
			if err := permCycle(t, srv, loc, ghactionstest.Grant{Kind: ghactionstest.Classic, Scopes: want.scopes}); err != nil {
				t.Fatalf("with the documented scopes %v: %v", want.scopes, err)
			}
			for _, scope := range want.scopes {
				others := []string{"read:org", "workflow"}
				if scope == ghactionstest.ScopeRepo {
					others = append(others, "public_repo")
				} else {
					others = append(others, ghactionstest.ScopeRepo)
				}
				err := permCycle(t, srv, loc, ghactionstest.Grant{Kind: ghactionstest.Classic, Scopes: others})
				status, msg := refusal(err)
				wantStatus, wantMsg := http.StatusNotFound, "Not Found"
				if loc == ghactions.OrganizationSecrets {
					wantStatus, wantMsg = http.StatusForbidden, "Must have admin rights to Repository."
				}
				if err == nil || status != wantStatus || msg != wantMsg {
					t.Fatalf("scopes %v instead of %s: %v; want %d %q", others, scope, err, wantStatus, wantMsg)
				}
				if s := err.Error(); !strings.Contains(s, "the token lacks a scope: GitHub accepts the scope "+scope+", and the token has "+strings.Join(others, ", ")) || strings.Contains(s, "github_pat_") {
					t.Fatalf("scopes %v instead of %s, the error does not say what is needed (or shows the token): %s", others, scope, s)
				}
			}
		})
	}
}

// firstWriteFails checks that with g the destination lists, then fails
// at the write of a create with an error that says mention, stops Apply
// there, and writes nothing.
func firstWriteFails(t *testing.T, srv *ghactionstest.Server, loc ghactions.Location, g ghactionstest.Grant, mention string) {
	t.Helper()
	ctx := context.Background()
	token := fmt.Sprintf("github_pat_readonly%04d", repoSeq.Add(1))
	srv.AddToken(token, g)
	opts, sc := place(srv, loc)
	opts.Token = token
	d, err := ghactions.New(ctx, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.List(ctx); err != nil {
		t.Fatalf("%v: List = %v, want reading to work", g.Permissions, err)
	}
	srv.ResetCounts()
	errs, err := d.Apply(ctx, []destination.Change{put("K", "v1", ""), put("L", "v1", "")})
	status, _ := refusal(errs[0])
	if err == nil || status != http.StatusForbidden || !strings.Contains(errs[0].Error(), ": write: ") {
		t.Fatalf("%v: Apply = %v, %v; want a 403 at the write", g.Permissions, errs, err)
	}
	if s := errs[0].Error(); !strings.Contains(s, mention) || strings.Contains(s, token) {
		t.Fatalf("%v: the error does not name %s (or shows the token): %s", g.Permissions, mention, s)
	}
	if n := srv.Count(ghactionstest.OpPutSecret); n != 1 || errs[1] == nil {
		t.Fatalf("%v: %d PUTs and %v for the second change; want Apply to stop at the first refusal", g.Permissions, n, errs[1])
	}
	if len(sc.List()) != 0 {
		t.Fatalf("%v: the server holds %v", g.Permissions, sc.List())
	}
}

// A classic token without the scope gets GitHub's 404 for a repository's
// secrets; its headers tell it from a secret that is gone, so a delete is
// not taken for done (here with the public key cached, so that the read
// of the secret is the first request refused), and Apply stops there.
func TestMissingScopeIsNotGone(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, ghactionstest.Options{})
	const token = "ghp_losesScope000"
	srv.AddToken(token, ghactionstest.Grant{Kind: ghactionstest.Classic, Scopes: []string{"repo"}})
	opts, sc := place(srv, ghactions.RepositorySecrets)
	opts.Token = token
	d, err := ghactions.New(ctx, &opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustApply(t, d, put("K", "v", ""))
	v := mustList(t, d)["K"].Version

	srv.AddToken(token, ghactionstest.Grant{Kind: ghactionstest.Classic, Scopes: []string{"read:org"}})
	srv.ResetCounts()
	errs, err := d.Apply(ctx, []destination.Change{del("K", v), del("L", "y")})
	if err == nil || errs[0] == nil || errs[1] == nil || srv.Requests() != 1 || srv.Count(ghactionstest.OpGetSecret) != 1 {
		t.Fatalf("deletes without the scope: %v, %v after %v; want a refusal at the first read", errs, err, srv.Counts())
	}
	if s := errs[0].Error(); !strings.Contains(s, "GitHub accepts the scope repo, and the token has read:org") || strings.Contains(s, token) {
		t.Fatalf("the error: %s", s)
	}
	if _, ok := sc.Get("K"); !ok {
		t.Fatal("K is gone")
	}
}
