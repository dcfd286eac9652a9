package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestReadiness: a sync is ready when its latest round succeeded, when it
// has been failing for less than ready_grace, or when another replica holds
// its lock; not before its first round, nor when failing longer. Manual
// syncs do not count.
func TestReadiness(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ok := func(at time.Duration) func(*metrics) {
		return func(m *metrics) {
			m.observe("a", &sync.Report{Operation: sync.OpSync, Flagged: 0, Finished: now.Add(-at)}, nil)
		}
	}
	fail := func(at time.Duration) func(*metrics) {
		return func(m *metrics) {
			m.observe("a", &sync.Report{Operation: sync.OpSync, Flagged: -1, Finished: now.Add(-at)}, errors.New("vault: unreachable"))
		}
	}
	keyFailed := func(m *metrics) {
		m.observe("a", &sync.Report{Operation: sync.OpSync, Flagged: 0, Finished: now, Totals: sync.Totals{Failed: 2}}, nil)
	}
	conflicts := func(m *metrics) {
		m.observe("a", &sync.Report{Operation: sync.OpSync, Flagged: 3, Finished: now, Totals: sync.Totals{Conflicts: 1}}, nil)
	}
	failedResolve := func(m *metrics) {
		m.observe("a", &sync.Report{Operation: sync.OpResolve, Flagged: -1, Finished: now}, errors.New("store down"))
	}
	manualFails := func(m *metrics) {
		m.observe("manual", &sync.Report{Operation: sync.OpSync, Finished: now}, errors.New("boom"))
	}
	role := func(r lockRole, since time.Duration) func(*trackedLock) {
		return func(l *trackedLock) {
			l.set("a", lockState{role: r, msg: "vaultkv: lock \"a\": connection refused", failingSince: now.Add(-since)})
		}
	}

	for _, tt := range []struct {
		name    string
		grace   time.Duration
		lock    func(*trackedLock) // nil: no lock
		rounds  []func(*metrics)
		ready   bool
		state   string
		message string
	}{
		{name: "no round yet", state: readyWaiting, message: "waiting for a first round"},
		{name: "succeeded", rounds: []func(*metrics){ok(time.Minute)}, ready: true, state: readySucceeded},
		{name: "conflicts flagged", rounds: []func(*metrics){conflicts}, ready: true, state: readySucceeded},
		{name: "failed, no grace", rounds: []func(*metrics){ok(time.Hour), fail(0)}, state: readyFailed, message: "vault: unreachable"},
		{name: "a key failed", rounds: []func(*metrics){keyFailed}, state: readyFailed, message: "2 keys failed"},
		{name: "failing within the grace", grace: 5 * time.Minute, rounds: []func(*metrics){ok(time.Hour), fail(4 * time.Minute), fail(0)}, ready: true, state: readyFailing},
		{name: "failing beyond the grace, however recent the last failure", grace: 5 * time.Minute,
			rounds: []func(*metrics){fail(6 * time.Minute), fail(3 * time.Minute), fail(0)}, state: readyFailed},
		{name: "a success ends the failures", grace: 5 * time.Minute,
			rounds: []func(*metrics){fail(time.Hour), ok(2 * time.Minute), fail(0)}, ready: true, state: readyFailing},
		{name: "recovered", rounds: []func(*metrics){fail(time.Minute), ok(0)}, ready: true, state: readySucceeded},
		{name: "a failed resolution is not a round", rounds: []func(*metrics){ok(time.Minute), failedResolve}, ready: true, state: readySucceeded},
		{name: "a manual sync does not count", rounds: []func(*metrics){ok(0), manualFails}, ready: true, state: readySucceeded},
		{name: "standby, no round", lock: role(roleStandby, 0), ready: true, state: readyStandby},
		{name: "standby after failing as the leader", lock: role(roleStandby, 0), rounds: []func(*metrics){fail(time.Hour)}, ready: true, state: readyStandby},
		{name: "leader, no round yet", lock: role(roleLeader, 0), state: readyWaiting},
		{name: "leader, succeeded", lock: role(roleLeader, 0), rounds: []func(*metrics){ok(0)}, ready: true, state: readySucceeded},
		{name: "leader, failing", lock: role(roleLeader, 0), rounds: []func(*metrics){fail(0)}, state: readyFailed},
		{name: "lock not asked for yet", lock: role(roleStarting, 0), state: readyWaiting, message: "waiting for the sync's lock"},
		{name: "lock unreachable, within the grace", grace: time.Minute, lock: role(roleLockFailed, 30*time.Second), ready: true, state: readyFailing},
		{name: "lock unreachable, beyond the grace", grace: time.Minute, lock: role(roleLockFailed, 2*time.Minute), state: readyFailed,
			message: "cannot take the sync's lock: vaultkv: lock \"a\": connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			var lock state.Lock
			if tt.lock != nil {
				lock = state.NewMemoryLock()
			}
			g := testGenLock(t, m, lock,
				testSync{name: "a", auto: true, src: memory.New(nil), dst: memory.New(nil)},
				testSync{name: "manual", src: memory.New(nil), dst: memory.New(nil)})
			g.cfg = &Config{readyGrace: tt.grace}
			if tt.lock != nil {
				tt.lock(g.lock)
			}
			d := testDaemon(g, m)
			for _, r := range tt.rounds {
				r(m)
			}
			rd := d.readiness(now)
			if len(rd.Syncs) != 1 || rd.Syncs[0].Name != "a" {
				t.Fatalf("readiness lists %+v, want the auto-synced sync alone", rd.Syncs)
			}
			s := rd.Syncs[0]
			if rd.Ready != tt.ready || s.Ready != tt.ready || s.State != tt.state || (tt.message != "" && s.Message != tt.message) {
				t.Fatalf("readiness = %v %+v, want ready %v, state %s, message %q", rd.Ready, s, tt.ready, tt.state, tt.message)
			}
			if (s.State == readyFailing || s.State == readyFailed) && s.FailingSince == "" {
				t.Fatalf("%+v: a failing sync says since when", s)
			}
		})
	}
}

// getReady GETs /readyz and decodes it.
func getReady(t *testing.T, srv *httptest.Server) (int, readiness) {
	t.Helper()
	code, body := call(t, srv, "GET", "/readyz", "")
	var rd readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	if (code == http.StatusOK) != rd.Ready || (code != http.StatusOK && code != http.StatusServiceUnavailable) {
		t.Fatalf("/readyz = %d with ready %v", code, rd.Ready)
	}
	return code, rd
}

// TestReadyzFollowsTheRounds runs an auto-synced sync whose destination
// refuses writes, then accepts them: /readyz is 503 while it fails (200
// within ready_grace), and 200 once a round succeeds. /healthz is 200
// throughout.
func TestReadyzFollowsTheRounds(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			var refuse atomic.Bool
			refuse.Store(true)
			dst := memory.NewWithOptions(nil, &memory.Options{BeforeApply: func(context.Context, destination.Change) error {
				if refuse.Load() {
					return errors.New("memory: write refused")
				}
				return nil
			}})
			m := newMetrics()
			g := testGen(t, m, testSync{name: "a", auto: true, src: memory.New(map[string]string{"A": "1"}), dst: dst})
			g.cfg = &Config{readyGrace: grace}
			d := startTestDaemon(t, g, m)
			srv := httptest.NewServer((&server{d: d}).routes())
			defer srv.Close()

			wantFailing := readyFailed
			if grace > 0 {
				wantFailing = readyFailing
			}
			waitFor(t, "a failed round", func() bool {
				_, rd := getReady(t, srv)
				return rd.Syncs[0].State == wantFailing
			})
			code, rd := getReady(t, srv)
			if (code == 200) != (grace > 0) || rd.Syncs[0].Message == "" {
				t.Fatalf("/readyz while failing, grace %v = %d %+v", grace, code, rd)
			}
			if code, _ := call(t, srv, "GET", "/healthz", ""); code != 200 {
				t.Fatalf("/healthz while failing = %d", code)
			}
			refuse.Store(false)
			waitFor(t, "a round that succeeds", func() bool { _, rd := getReady(t, srv); return rd.Syncs[0].State == readySucceeded })
			if code, rd := getReady(t, srv); code != 200 || rd.Syncs[0].LastRoundAt == "" || rd.Syncs[0].FailingSince != "" {
				t.Fatalf("/readyz after a success = %+v", rd)
			}
		})
	}
}

// TestReadyzStandby: while another replica holds a sync's lock, this one
// runs no round and is ready; when the lock is free it takes it, runs the
// rounds, and is ready once one succeeds.
func TestReadyzStandby(t *testing.T) {
	lock := state.NewMemoryLock()
	_, release, err := lock.Acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	dst := memory.New(nil)
	g := testGenLock(t, m, lock, testSync{name: "a", auto: true, src: memory.New(map[string]string{"A": "1"}), dst: dst})
	d := startTestDaemon(t, g, m)
	srv := httptest.NewServer((&server{d: d}).routes())
	defer srv.Close()

	waitFor(t, "standby", func() bool { _, rd := getReady(t, srv); return rd.Syncs[0].State == readyStandby })
	if code, rd := getReady(t, srv); code != 200 || !rd.Ready {
		t.Fatalf("/readyz on standby = %d %+v", code, rd)
	}
	time.Sleep(100 * time.Millisecond)
	if _, ran := m.outcome("a"); ran {
		t.Fatal("a standby replica ran a round")
	}
	release()
	waitFor(t, "the rounds on this replica", func() bool { _, rd := getReady(t, srv); return rd.Syncs[0].State == readySucceeded })
	if v, _ := dst.Get("A"); v.Value != "1" {
		t.Fatalf("destination A = %q", v.Value)
	}
}

// TestReadyzTwoReplicasOnVault runs two replicas of one configuration whose
// state and locks are in a real Vault: one runs the sync, the other stands
// by, and both are ready. When the leader stops, the standby takes the lock,
// runs the rounds, and is ready on its own rounds.
func TestReadyzTwoReplicasOnVault(t *testing.T) {
	srv := vaulttest.Get(t)
	mount := srv.NewMount(t)
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "app.env"), "A=1\n")
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, fmt.Sprintf(`
state {
  connection = "v"
  mount      = %[1]q
  lock_ttl   = "2s"
}
connection "v" {
  address = %[2]q
  token { env = "SYNCD_TEST_TOKEN" }
}
sync "app" {
  auto_sync {
    interval = "100ms"
    debounce = "1ms"
  }
  source {
    dotenv { path = %[3]q }
  }
  destination {
    vault {
      connection = "v"
      mount      = %[1]q
      path       = "apps"
    }
  }
}
`, mount, srv.Addr, filepath.Join(dir, "app.env")))
	var logs syncBuffer
	replicas := []*daemon{startDaemon(t, cfgPath, &logs), startDaemon(t, cfgPath, &logs)}
	servers := make([]*httptest.Server, 2)
	for i, d := range replicas {
		servers[i] = httptest.NewServer((&server{d: d}).routes())
		defer servers[i].Close()
	}
	states := func() (leader, standby int) {
		leader, standby = -1, -1
		for i, s := range servers {
			code, rd := getReady(t, s)
			switch st := rd.Syncs[0].State; {
			case code == 200 && st == readySucceeded:
				leader = i
			case code == 200 && st == readyStandby:
				standby = i
			}
		}
		return leader, standby
	}
	// The replicas spread their locks: the one that started first may run
	// rounds until it sees the other join, and then hand the lock over
	// between rounds. Wait for a leader and a standby that stay so for a
	// second (the members renew every TTL/3): the leader runs rounds
	// (every 100 ms) and the standby none.
	var leader, standby int
	waitFor(t, "a settled leader and standby, both ready", func() bool {
		if leader, standby = states(); leader < 0 || standby < 0 {
			return false
		}
		standbyLast, _ := replicas[standby].metrics.outcome("app")
		leaderLast, _ := replicas[leader].metrics.outcome("app")
		time.Sleep(time.Second)
		l, s := states()
		standbyNow, _ := replicas[standby].metrics.outcome("app")
		leaderNow, _ := replicas[leader].metrics.outcome("app")
		return l == leader && s == standby && standbyNow.at.Equal(standbyLast.at) && leaderNow.at.After(leaderLast.at)
	})

	replicas[leader].current().stop(nil)
	waitFor(t, "the standby to take over", func() bool {
		code, rd := getReady(t, servers[standby])
		return code == 200 && rd.Syncs[0].State == readySucceeded
	})
	if strings.Contains(logs.String(), srv.Token) {
		t.Fatal("the token reached the logs")
	}
}
