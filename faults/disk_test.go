//go:build linux

package faults_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// stateDisk is a small file system of the test's own for the state file: a
// tmpfs where the test may mount one (as root, as in CI), so that the disk
// faults are real. Elsewhere it is a plain directory and the faults are
// made with the means a user has: a file size limit and permissions.
type stateDisk struct {
	dir     string
	mounted bool
}

func newStateDisk(t *testing.T) *stateDisk {
	t.Helper()
	d := &stateDisk{dir: t.TempDir()}
	if err := syscall.Mount("tmpfs", d.dir, "tmpfs", 0, "size=2m,mode=0700"); err == nil {
		d.mounted = true
		t.Cleanup(func() { _ = syscall.Unmount(d.dir, syscall.MNT_DETACH) })
		t.Logf("state file on a 2 MiB tmpfs at %s", d.dir)
	} else {
		t.Logf("cannot mount a tmpfs (%v): disk faults made with a file size limit and permissions instead", err)
	}
	return d
}

// fill makes the disk full and returns what frees it.
func (d *stateDisk) fill(t *testing.T) func() {
	t.Helper()
	if !d.mounted {
		// Writing past RLIMIT_FSIZE fails with EFBIG, as a disk that
		// cannot take more; SIGXFSZ would kill the process otherwise.
		var old syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
		ignoreSIGXFSZ()
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1024, Max: old.Max}); err != nil {
			t.Fatal(err)
		}
		return func() { _ = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) }
	}
	filler := filepath.Join(d.dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	_ = f.Close()
	return func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
}

// readOnly makes the state directory read-only and returns what undoes it.
func (d *stateDisk) readOnly(t *testing.T) func() {
	t.Helper()
	if !d.mounted {
		if err := os.Chmod(d.dir, 0o500); err != nil {
			t.Fatal(err)
		}
		return func() { _ = os.Chmod(d.dir, 0o700) }
	}
	remount := func(flags uintptr) {
		if err := syscall.Mount("tmpfs", d.dir, "tmpfs", syscall.MS_REMOUNT|flags, "size=2m,mode=0700"); err != nil {
			t.Fatalf("remount %s: %v", d.dir, err)
		}
	}
	remount(syscall.MS_RDONLY)
	return func() { remount(0) }
}

// diskRounds runs the fault rounds of a disk fault: the state file's disk
// fails before the k-th write, so the round writes Vault but cannot record
// what it did. Run says so; once the disk is back, the next round takes
// the writes that landed for its own (no conflict, not written again) and
// converges.
func diskRounds(t *testing.T, fault func(d *stateDisk, t *testing.T) func(), wantErr func(error) bool) {
	srv := vaulttest.Get(t)
	forEachLayout(t, func(t *testing.T, layout vaultkv.Layout) {
		d := newStateDisk(t)
		s := newScenario(t, scenarioOptions{srv: srv, conn: fastConfig(srv.Addr, srv.Token), layout: layout, stateDir: d.dir})
		var lift func()
		fire := func() { lift = fault(d, t) }
		round := func(n int) {
			o := s.run(s.trigger(n), fire, func() { lift() })
			s.checkWrites(o, nil)
			s.checkNoConflict(o)
			if o.err == nil || !wantErr(o.err) || !strings.Contains(o.err.Error(), "save state") {
				t.Errorf("round %d: Run = %v; want an error saying the state could not be saved, with its cause", s.round, firstLine(o.err))
			}
			// The store could not record the end of the round: its record
			// still says the round was running, never that it succeeded.
			if rec := o.status.Sync; rec == nil || rec.RunID != o.rep.RunID || rec.Status == state.Succeeded {
				t.Errorf("round %d: status %+v after a round whose end could not be recorded", s.round, rec)
			}
			s.checkNotRewritten(o, s.converge())
		}
		round(nKeys)
		round(s.mutate())
	})
}

func TestDiskFullMidRound(t *testing.T) {
	diskRounds(t, (*stateDisk).fill, func(err error) bool {
		return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG)
	})
}

func TestReadOnlyStateDirMidRound(t *testing.T) {
	diskRounds(t, (*stateDisk).readOnly, func(err error) bool {
		return errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES)
	})
}
