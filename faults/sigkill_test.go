package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination/dotenv"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// The environment of a child process of TestSigkillMidRound.
const (
	childEnv      = "SECRETSYNC_SIGKILL_CHILD" // "<dotenv file>|<state file>|<mount>"
	childAddrEnv  = "SECRETSYNC_SIGKILL_ADDR"
	childTokenEnv = "SECRETSYNC_SIGKILL_TOKEN"
)

// sigkillSync is the sync that the child processes run and the parent
// checks: a dotenv file pushed to Vault (secret-key layout), with a file
// state store.
func sigkillSync(ctx context.Context, addr, token, env, stateFile, mount string, auditor audit.Auditor) (*sync.Syncer, func(), error) {
	f, err := state.OpenFile(stateFile, nil)
	if err != nil {
		return nil, nil, err
	}
	conn, err := connection.New(ctx, connection.Config{Address: addr, Token: &connection.Token{Token: connection.Credential{Value: token}}}, nil)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	closeAll := func() { _ = conn.Close(context.Background()); _ = f.Close() }
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: mount, Path: "app", Layout: vaultkv.SecretKey, Owner: "sigkill"})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	src, err := dotenv.Open(env, nil)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	s, err := sync.New(sync.Config{Name: "sigkill", Source: src, Destination: kv, Store: f, Concurrency: 8, Auditor: auditor})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return s, closeAll, nil
}

// sigkillChild runs rounds until it is killed, printing one line per round.
func sigkillChild(spec string) int {
	parts := strings.Split(spec, "|")
	ctx := context.Background()
	// Each write's event tells the parent how far the round got.
	events := audit.AuditorFunc(func(_ context.Context, e audit.Event) error {
		fmt.Printf("child: event %s %s\n", e.Type, e.Key)
		return nil
	})
	s, _, err := sigkillSync(ctx, os.Getenv(childAddrEnv), os.Getenv(childTokenEnv), parts[0], parts[1], parts[2], events)
	if err != nil {
		fmt.Println("child: start:", err)
		return 1
	}
	fmt.Println("child: started")
	for {
		rep, err := s.Run(ctx)
		if rep != nil {
			fmt.Printf("child: round: conflicts=%d changed=%d err=%v\n", rep.Totals.Conflicts, rep.Totals.Changed(), err != nil)
		}
	}
}

func writeEnv(t *testing.T, path string, m map[string]string) {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestSigkillMidRound kills real sync processes with SIGKILL at random
// instants of their rounds, twelve times, while the host's dotenv file
// changes between lives. No process ever flags a conflict, and a final
// round converges: Vault holds exactly the file's values, and the round
// after it writes nothing.
func TestSigkillMidRound(t *testing.T) {
	srv := vaulttest.Get(t)
	dir := t.TempDir()
	env, stateFile, mount := filepath.Join(dir, "app.env"), filepath.Join(dir, "state.json"), srv.NewMount(t)
	rng := rand.New(rand.NewPCG(1, 2))
	host := map[string]string{}
	for i := range 300 {
		host[fmt.Sprintf("K%03d", i)] = fmt.Sprintf("v%x", rng.Uint64())
	}
	writeEnv(t, env, host)
	kills, rounds := 0, 0
	for life := range 12 {
		if life > 0 {
			for range 120 {
				k := fmt.Sprintf("K%03d", rng.IntN(300))
				host[k] = fmt.Sprintf("v%x", rng.Uint64())
			}
			writeEnv(t, env, host)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+env+"|"+stateFile+"|"+mount, childAddrEnv+"="+srv.Addr, childTokenEnv+"="+srv.Token)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1000)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill the child after a random number of its writes (0: as soon
		// as it is up, while it lists; more than it has to do: after its
		// round, at or after its saves).
		target := rng.IntN(140)
		seen := 0
		timeout := time.After(60 * time.Second)
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("life %d: the child exited by itself", life)
				}
				switch {
				case strings.HasPrefix(l, "child: start:"):
					t.Fatalf("life %d: %s", life, l)
				case strings.HasPrefix(l, "child: event"):
					seen++
				case strings.HasPrefix(l, "child: round:"):
					rounds++
					if !strings.Contains(l, "conflicts=0") {
						t.Errorf("life %d: %s", life, l)
					}
					if rng.IntN(2) == 0 {
						break wait // between rounds
					}
				}
				if (target > 0 && seen >= target) || (target == 0 && l == "child: started") {
					break wait
				}
			case <-timeout:
				t.Fatalf("life %d: no progress", life)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		for l := range lines {
			if strings.HasPrefix(l, "child: round:") && !strings.Contains(l, "conflicts=0") {
				t.Errorf("life %d: %s", life, l)
			}
		}
	}
	ctx := context.Background()
	s, closeAll, err := sigkillSync(ctx, srv.Addr, srv.Token, env, stateFile, mount, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	rep, err := s.Run(ctx)
	if err != nil || rep.Totals.Conflicts != 0 {
		t.Fatalf("round after %d kills: %v, %v", kills, rep, err)
	}
	got := map[string]string{}
	kv := srv.Client(t).KVv2(mount)
	for k := range host {
		sec, err := kv.Get(ctx, "app/"+k)
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		got[k] = fmt.Sprint(sec.Data["value"])
	}
	if !maps.Equal(got, host) {
		t.Fatal("Vault differs from the host's file after the final round")
	}
	if again, err := s.Run(ctx); err != nil || again.Totals.Changed() != 0 {
		t.Fatalf("the round after the final one: %v, %v", again, err)
	}
	t.Logf("%d processes killed with SIGKILL mid-round (%d rounds completed by them), no conflict flagged; the final round converged (%s)", kills, rounds, rep)
}
