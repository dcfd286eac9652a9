package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination/dotenv"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
)

// A second process is this test binary run again with faultsChildEnv set
// to a mode: TestMain then runs child instead of the tests.
const (
	faultsChildEnv     = "SECRETSYNC_FAULTS_CHILD"
	faultsChildArgsEnv = "SECRETSYNC_FAULTS_CHILD_ARGS"

	// childOpen opens the state file, which another process holds: it must
	// be refused with state.ErrLocked.
	childOpen = "open"
	// childSync runs one round of the sync on the state file, which must
	// find nothing to do.
	childSync = "sync"
)

// childArgs is what a second process needs to run the same sync.
type childArgs struct {
	Addr, Token   string
	Mount, Path   string
	State, Source string
	Keys          int
}

// runChild runs a second process in mode and fails the test if it reports
// a failure.
func runChild(t *testing.T, mode string, args childArgs) {
	t.Helper()
	js, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), faultsChildEnv+"="+mode, faultsChildArgsEnv+"="+string(js))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second process (%s): %v\n%s", mode, err, out)
	}
	t.Logf("second process (%s): %s", mode, strings.TrimSpace(string(out)))
}

// child is the second process. It prints what it saw and returns its exit
// code: 0 when it saw what it should.
func child(mode string) int {
	var args childArgs
	if err := json.Unmarshal([]byte(os.Getenv(faultsChildArgsEnv)), &args); err != nil {
		fmt.Println("bad arguments:", err)
		return 2
	}
	st, err := state.OpenFile(args.State, nil)
	switch mode {
	case childOpen:
		if err == nil {
			_ = st.Close()
			fmt.Println("opened a state file that another process holds")
			return 1
		}
		if !errors.Is(err, state.ErrLocked) {
			fmt.Printf("opening a state file that another process holds: %v; want state.ErrLocked\n", err)
			return 1
		}
		fmt.Printf("refused as it should be: %v\n", err)
		return 0
	case childSync:
		if err != nil {
			fmt.Println("open the state file:", err)
			return 1
		}
		defer st.Close()
		if err := childRound(args, st); err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("a round with nothing to do, as it should be")
		return 0
	}
	fmt.Println("unknown mode", mode)
	return 2
}

// childRound runs one round of the same sync and checks that it had
// nothing to do.
func childRound(args childArgs, st *state.File) error {
	ctx := context.Background()
	conn, err := connection.New(ctx, fastConfig(args.Addr, args.Token), nil)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	kv, err := vaultkv.New(ctx, conn, &vaultkv.Options{Mount: args.Mount, Path: args.Path, Layout: vaultkv.SecretKey, Owner: syncName})
	if err != nil {
		return err
	}
	src, err := dotenv.Open(args.Source, nil)
	if err != nil {
		return err
	}
	s, err := sync.New(sync.Config{Name: syncName, Source: src, Destination: kv, Mode: sync.Push, Store: st})
	if err != nil {
		return err
	}
	rep, err := s.Run(ctx)
	if err != nil {
		return fmt.Errorf("round: %w", err)
	}
	if rep.Totals.Changed() != 0 || rep.Totals.Unchanged != args.Keys {
		return fmt.Errorf("round: %s; want all %d keys unchanged", rep, args.Keys)
	}
	status, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if status.Sync == nil || status.Sync.Status != state.Succeeded {
		return fmt.Errorf("status %+v, want succeeded", status.Sync)
	}
	return nil
}
