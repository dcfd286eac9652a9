package registry

import (
	"strings"
	"testing"

	"github.com/secretsync/secretsync/sync"
)

func TestSyncName(t *testing.T) {
	long := strings.Repeat("very-long-path/", 6) + "end"
	for _, tt := range []struct {
		typ, name, mount, secret string
		want                     string // "" when hashed; prefix then
		prefix                   string
	}{
		{"gh", "my-repo", "kv", "app/prod", "gh-my-repo-kv-app-prod", ""},
		{"aws-sm", "Prod.Store", "secret", "Team/App_1", "aws-sm-prod-store-secret-team-app_1", ""},
		{"vault-kv", "replica", "kv/team a", "x//y..z", "vault-kv-replica-kv-team-a-x-y-z", ""},
		{"gcp-sm", "g", "kv", "ünïcode/ok", "gcp-sm-g-kv-n-code-ok", ""},
		{"vercel-project", "web", "kv", long, "", "vercel-project-web-kv-very-long-path-very-long-path-ve-"},
	} {
		got := syncName(tt.typ, tt.name, SecretRef{Mount: tt.mount, Name: tt.secret})
		if !sync.ValidName(got) || len(got) > maxSyncName {
			t.Errorf("syncName(%q, %q, %q, %q) = %q: not a valid name of at most %d", tt.typ, tt.name, tt.mount, tt.secret, got, maxSyncName)
		}
		switch {
		case tt.want != "" && got != tt.want:
			t.Errorf("syncName(%q, %q, %q, %q) = %q, want %q", tt.typ, tt.name, tt.mount, tt.secret, got, tt.want)
		case tt.want == "" && (!strings.HasPrefix(got, tt.prefix) || len(got) != len(tt.prefix)+syncHashLen):
			t.Errorf("syncName of a long path = %q, want it cut, with a hash, after %q", got, tt.prefix)
		}
	}
	// Cut names stay apart.
	a := syncName("gh", "r", SecretRef{Mount: "kv", Name: long + "/a"})
	b := syncName("gh", "r", SecretRef{Mount: "kv", Name: long + "/b"})
	if a == b || a[:len(a)-syncHashLen] != b[:len(b)-syncHashLen] {
		t.Errorf("long names %q and %q: want one readable prefix and two hashes", a, b)
	}
}

// TestNewSyncNameUnique: an association whose readable name another one
// has gets the hashed form; the first keeps its name.
func TestNewSyncNameUnique(t *testing.T) {
	r := New(nil)
	d := &dest{assocs: map[SecretRef]*assoc{}}
	r.dests[destKey{"gh", "my-repo"}] = d
	add := func(ref SecretRef) string {
		n := r.newSyncName("gh", "my-repo", ref)
		d.assocs[ref] = &assoc{a: Association{SyncName: n}}
		return n
	}
	first := add(SecretRef{Mount: "kv", Name: "app/prod"})
	second := add(SecretRef{Mount: "kv", Name: "App/Prod"})
	third := add(SecretRef{Mount: "kv/app", Name: "prod"})
	if first != "gh-my-repo-kv-app-prod" || !strings.HasPrefix(second, first+"-") || !strings.HasPrefix(third, first+"-") || second == third {
		t.Fatalf("names %q, %q, %q", first, second, third)
	}
	for _, n := range []string{second, third} {
		if !sync.ValidName(n) || len(n) > maxSyncName {
			t.Errorf("%q is not a valid name", n)
		}
	}
}

// FuzzSyncName: every association gets a valid sync name of at most
// maxSyncName, and a name is readable or cut with a hash.
func FuzzSyncName(f *testing.F) {
	f.Add("gh", "my-repo", "kv", "app/prod")
	f.Add("aws-sm", "A.b_c", "kv/x", strings.Repeat("/é", 80))
	f.Fuzz(func(t *testing.T, typ, name, mount, secret string) {
		if checkName(typ, name) != nil || !typePattern.MatchString(typ) {
			return // refused by Put
		}
		ref := SecretRef{Mount: mount, Name: secret}
		n := syncName(typ, name, ref)
		if !sync.ValidName(n) || len(n) > maxSyncName {
			t.Fatalf("syncName(%q, %q, %q, %q) = %q", typ, name, mount, secret, n)
		}
		if r := readableSyncName(typ, name, ref); n != r && !strings.HasPrefix(r, strings.TrimSuffix(n[:len(n)-syncHashLen-1], "-")) {
			t.Fatalf("syncName %q is neither the readable %q nor its cut", n, r)
		}
	})
}
