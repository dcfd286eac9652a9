package faults_test

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/dotenv"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// durableScenario starts a Durable server for the test and a scenario on
// it, whose code under test goes through the server's proxy.
func durableScenario(t *testing.T, layout vaultkv.Layout) (*vaulttest.Durable, *scenario) {
	t.Helper()
	d := vaulttest.NewDurable(t)
	return d, newScenario(t, scenarioOptions{srv: d.Server, behind: d.Direct, conn: fastConfig(d.Addr, d.Token), layout: layout})
}

func TestRestartMidRound(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		d, s := durableScenario(t, layout)
		var up chan error
		fire := func() {
			if err := d.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			up = make(chan error, 1)
			go func() { up <- d.Up(context.Background()) }()
		}
		lift := func() {
			if err := <-up; err != nil {
				t.Fatalf("bring Vault back: %v", err)
			}
		}
		s.standard(fire, lift, expectUnavailable(s))
	})
}

func TestSealMidRound(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		d, s := durableScenario(t, layout)
		fire := func() {
			if err := d.Seal(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		lift := func() {
			if err := d.Unseal(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		s.standard(fire, lift, expectUnavailable(s))
	})
}

// proxied returns a proxy in front of srv, closed when the test ends.
func proxied(t *testing.T, srv *vaulttest.Server) *vaulttest.Proxy {
	t.Helper()
	u, err := url.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := vaulttest.NewProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestFrozenServer(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		srv := vaulttest.Get(t)
		p := proxied(t, srv)
		s := newScenario(t, scenarioOptions{srv: srv, conn: fastConfig(p.URL(), srv.Token), layout: layout})
		lift := func() {
			p.Thaw()
			// Requests held while frozen now reach Vault, with their
			// clients gone (Vault drops those, as after SIGCONT); give it
			// a moment before looking.
			time.Sleep(time.Second)
		}
		s.standard(p.Freeze, lift, expectUnavailable(s))
	})
}

func TestLostResponses(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		srv := vaulttest.Get(t)
		p := proxied(t, srv)
		s := newScenario(t, scenarioOptions{srv: srv, conn: fastConfig(p.URL(), srv.Token), layout: layout})
		s.standard(p.FreezeResponses, p.Thaw, expectUnavailable(s))
	})
}

func TestRateLimited(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		srv := vaulttest.Get(t)
		s := newScenario(t, scenarioOptions{srv: srv, conn: fastConfig(srv.Addr, srv.Token), layout: layout})
		var q *vaulttest.Quota
		fire := func() {
			// One request an hour on the mount, and that one used up:
			// every request of the sync gets 429, retries included.
			q = srv.RateLimit(t, s.mount+"/", &vaulttest.RateLimitOptions{Rate: 1, Interval: time.Hour})
			q.Exhaust(t)
		}
		lift := func() { q.Remove(t) }
		s.standard(fire, lift, expectUnavailable(s))
	})
}

// kvPolicy is what a sync to mount needs in either layout.
func kvPolicy(mount string) string {
	return fmt.Sprintf(`path "%s/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "sys/internal/ui/mounts/%s" { capabilities = ["read"] }
`, mount, mount)
}

func TestTokenRevoked(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		srv := vaulttest.Get(t)
		mount := srv.NewMount(t)
		policy := srv.Policy(t, kvPolicy(mount))
		newToken := func() string {
			sec, err := srv.Client(t).Auth().Token().CreateOrphanWithContext(context.Background(),
				&api.TokenCreateRequest{Policies: []string{policy}, TTL: "1h"})
			if err != nil {
				t.Fatal(err)
			}
			return sec.Auth.ClientToken
		}
		// The token comes from a file, as a Vault Agent sink gives it: a
		// new token in the file is picked up at the next login.
		file := filepath.Join(t.TempDir(), "token")
		token := newToken()
		if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := fastConfig(srv.Addr, "")
		cfg.Token.Token = connection.Credential{File: file}
		s := newScenario(t, scenarioOptions{srv: srv, mount: mount, conn: cfg, layout: layout})
		fire := func() { srv.RevokeToken(t, token) }
		lift := func() {
			token = newToken()
			if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		expect := func(o *outcome) {
			t.Helper()
			if o.err == nil {
				t.Errorf("round %d: Run returned nil with the token revoked", s.round)
				return
			}
			if statusOf(o) != state.Failed {
				t.Errorf("round %d: status %q, want %q", s.round, statusOf(o), state.Failed)
			}
			for what, msg := range map[string]string{"Run's error": o.err.Error(), "the status message": o.status.Sync.Message} {
				low := strings.ToLower(msg)
				if !strings.Contains(low, "revoked") && !strings.Contains(low, "expired") || strings.Contains(low, "lacks the") {
					t.Errorf("round %d: %s does not say that the token was revoked or expired: %q", s.round, what, firstLine(fmt.Errorf("%s", msg)))
				}
			}
		}
		s.standard(fire, lift, expect)
	})
}

func TestAppRoleTokenRevoked(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		srv := vaulttest.Get(t)
		mount := srv.NewMount(t)
		role := srv.AppRole(t, &vaulttest.RoleOptions{Policies: []string{srv.Policy(t, kvPolicy(mount))}})
		cfg := role.Config()
		cfg.Timeout, cfg.MaxRetries = clientTimeout, clientRetries
		s := newScenario(t, scenarioOptions{srv: srv, mount: mount, conn: cfg, layout: layout})
		var logins int
		fire := func() {
			if n := role.RevokeTokens(t); n == 0 {
				t.Fatal("the sync's connection holds no token of the role to revoke")
			}
			logins = s.conn.Logins()
		}
		expect := func(o *outcome) {
			t.Helper()
			if o.err != nil || o.rep.Totals.Failed > 0 || statusOf(o) != state.Succeeded {
				t.Errorf("round %d: error %v, %d failed keys, status %q; a revoked AppRole token must be replaced by a new login, unseen by the round",
					s.round, firstLine(o.err), o.rep.Totals.Failed, statusOf(o))
			}
			if n := s.conn.Logins() - logins; n != 1 {
				t.Errorf("round %d: %d logins after the token was revoked; want exactly one, shared by every request in flight", s.round, n)
			}
		}
		s.standard(fire, nil, expect)
	})
}

func TestConcurrentWriter(t *testing.T) {
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		srv := vaulttest.Get(t)
		s := newScenario(t, scenarioOptions{srv: srv, conn: fastConfig(srv.Addr, srv.Token), layout: layout})
		ctx := context.Background()
		s.converge() // a first round writes every key; the next one nothing

		// Every key changes at the source; mid-round, another writer
		// changes some of the same secrets in Vault: some the round has
		// written already, some it has not reached yet, and one it never
		// had.
		src := s.sourceValues()
		for k := range src {
			s.mem.Set(k, "v2-"+k)
		}
		writer := map[string]string{}
		var early, late []string // written by the other writer after, and before, the sync
		fire := func() {
			passed := s.dest.passedKeys()
			var pending []string
			for _, k := range slices.Sorted(maps.Keys(src)) {
				if !slices.Contains(passed, k) {
					pending = append(pending, k)
				}
			}
			slices.Sort(passed)
			early = head5(passed)
			late = head5(pending)
			for _, k := range append(append(slices.Clone(early), late...), "WRITER_ONLY") {
				writer[k] = "writer-" + k
			}
			c := s.behind()
			kv := c.KVv2(s.mount)
			if layout == vaultkv.SecretPath {
				data := map[string]any{}
				for k, v := range writer {
					data[k] = v
				}
				if _, err := kv.Patch(ctx, s.path, data); err != nil {
					t.Fatal(err)
				}
				return
			}
			for k, v := range writer {
				if _, err := kv.Put(ctx, s.path+"/"+k, map[string]any{"value": v}); err != nil {
					t.Fatal(err)
				}
			}
		}
		others := func() map[string]bool {
			m := map[string]bool{}
			for k := range writer {
				m[k] = true
			}
			return m
		}
		kept := func(o *outcome) {
			t.Helper()
			for k, v := range writer {
				if e := o.after[k]; !e.live || e.value != v {
					t.Errorf("round %d: the other writer's value of %s was overwritten or deleted", s.round, k)
				}
			}
		}

		o := s.run(s.trigger(len(src)), fire, nil)
		s.checkTruth(o)
		s.checkWrites(o, others())
		kept(o)
		if o.err != nil || o.rep.Totals.Failed > 0 {
			t.Errorf("round %d: error %v, %d failed; a key changed during the round is read again next round, not a failure",
				s.round, firstLine(o.err), o.rep.Totals.Failed)
		}
		// In the SecretPath layout the round's one write of the secret is
		// refused: nothing was written, so the round reads the secret again
		// and flags at once what the next round would flag. In the
		// SecretKey layout, the keys written before stay written, and those
		// changed under the round are retried next round.
		replanned := layout == vaultkv.SecretPath
		want := sync.Retry
		if replanned {
			want = sync.Conflict
		}
		for _, k := range late {
			if r, _ := o.rep.Result(k); r.Action != want {
				t.Errorf("round %d: %s, changed by the other writer before the round wrote it: %q, want %q", s.round, k, r.Action, want)
			}
		}
		t.Logf("the other writer changed %d keys after the round wrote them, %d before, and created one", len(early), len(late))

		// The next round flags every key the other writer changed, writes
		// the rest, and keeps the other writer's values.
		flaggedRight := func(o *outcome) {
			t.Helper()
			s.checkTruth(o)
			s.checkWrites(o, others())
			kept(o)
			var flagged []string
			for _, c := range o.status.Conflicts {
				flagged = append(flagged, c.Key)
			}
			want := slices.Sorted(maps.Keys(writer))
			if !slices.Equal(flagged, want) {
				t.Errorf("round %d: flagged %v, want the other writer's keys %v", s.round, flagged, want)
			}
			if o.err != nil || o.rep.Totals.Failed > 0 || o.rep.Totals.Retries > 0 || statusOf(o) != state.Conflicted {
				t.Errorf("round %d: error %v, %s, status %q; want the conflicts flagged, everything else written, status %q",
					s.round, firstLine(o.err), o.rep, statusOf(o), state.Conflicted)
			}
			for k, v := range o.want {
				if _, theirs := writer[k]; !theirs && (!o.after[k].live || o.after[k].value != v) {
					t.Errorf("round %d: %s does not hold the source's value", s.round, k)
				}
			}
		}
		if !replanned {
			o = s.run(0, nil, nil)
		}
		flaggedRight(o)
		detected := map[string]bool{}
		for _, e := range o.events {
			if e.Type == audit.ConflictDetected {
				detected[e.Key] = true
			}
		}
		for k := range writer {
			if !detected[k] {
				t.Errorf("round %d: no %s event for %s", s.round, audit.ConflictDetected, k)
			}
		}
		o = s.run(0, nil, nil)
		flaggedRight(o)
		if o.rep.Totals.Changed() != 0 || len(o.events) != 0 {
			t.Errorf("round %d: %s with %d events; the conflicts were flagged already and nothing else changed", s.round, o.rep, len(o.events))
		}

		// Resolving each conflict for Vault's side takes the other
		// writer's values into the source: nothing of theirs was lost.
		for k := range writer {
			if err := s.syncer.Resolve(ctx, k, conflict.KeepDestination); err != nil {
				t.Fatalf("resolve %s: %v", k, err)
			}
		}
		for k, v := range writer {
			if got := s.sourceValues()[k]; got != v {
				t.Errorf("after resolution, the source holds %q for %s, want the other writer's value", got, k)
			}
		}
		s.converge()
	})
}

func head5(keys []string) []string {
	if len(keys) > 5 {
		return slices.Clone(keys[:5])
	}
	return slices.Clone(keys)
}

func TestTwoProcessesOneStateFile(t *testing.T) {
	srv := vaulttest.Get(t)
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "app.env")
	var b strings.Builder
	vals := initialValues(nKeys)
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		fmt.Fprintf(&b, "%s=%s\n", k, vals[k])
	}
	if err := os.WriteFile(srcPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	openSource := func(t *testing.T) destination.Reader {
		f, err := dotenv.Open(srcPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	s := newScenario(t, scenarioOptions{srv: srv, conn: fastConfig(srv.Addr, srv.Token), layout: vaultkv.SecretKey, source: openSource})
	args := childArgs{Addr: srv.Addr, Token: srv.Token, Mount: s.mount, Path: s.path, State: s.storePath, Source: srcPath, Keys: nKeys}

	// Mid-round, a second process opens the same state file: it is
	// refused with state.ErrLocked, and the first process's round goes on.
	fire := func() { runChild(t, childOpen, args) }
	expect := func(o *outcome) {
		t.Helper()
		if o.err != nil || o.rep.Totals.Changed() != nKeys || statusOf(o) != state.Succeeded {
			t.Errorf("round %d: error %v, %s, status %q; the second process must not disturb the first",
				s.round, firstLine(o.err), o.rep, statusOf(o))
		}
	}
	s.faultRound(s.trigger(nKeys), fire, nil, expect)
	s.converge()

	// Once the first process lets go, the second one takes over: it sees
	// the state the first one saved and has nothing to do.
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	before := s.vault()
	runChild(t, childSync, args)
	if after := s.vault(); !maps.Equal(before, after) {
		t.Error("the second process changed Vault in a round with nothing to do")
	}
}
