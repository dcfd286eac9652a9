//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package dotenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/atomicfile"
)

func TestApplyWaitsForTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	f := open(t, path, &Options{CreateIfMissing: true})
	unlock, err := atomicfile.Lock(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errs, err := f.Apply(ctx, []destination.Change{{Key: "A", Value: "1"}})
	if !errors.Is(err, context.DeadlineExceeded) || errs != nil {
		t.Fatalf("Apply while another holds the lock = %v, %v; want context.DeadlineExceeded", errs, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.Apply(context.Background(), []destination.Change{{Key: "A", Value: "1"}})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Apply did not wait for the lock: %v", err)
	default:
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "A=1\n" {
		t.Fatalf("file = %q", got)
	}
}

// TestLockThroughSymlink: a File opened through a symbolic link takes the
// lock of the real file, the one a File opened through the target takes.
func TestLockThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.env")
	link := filepath.Join(dir, ".env")
	writeFile(t, target, "A=1\n")
	if err := os.Symlink("real.env", link); err != nil {
		t.Skipf("no symbolic links: %v", err)
	}
	f := open(t, link, nil)
	unlock, err := atomicfile.Lock(target + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errs, err := f.Apply(ctx, []destination.Change{{Key: "B", Value: "2"}})
	if !errors.Is(err, context.DeadlineExceeded) || errs != nil {
		t.Fatalf("Apply through the link while the target's lock is held = %v, %v; want context.DeadlineExceeded", errs, err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, f, destination.Change{Key: "B", Value: "2"})
	if _, err := os.Lstat(link + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a lock file next to the link: %v", err)
	}
	if got := readFile(t, target); got != "A=1\nB=2\n" {
		t.Fatalf("target = %q", got)
	}
}

// TestSeveralFiles has Files of one path, as separate processes would have,
// increment counters with check-and-set: no increment may be lost.
func TestSeveralFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	const writers, rounds = 4, 25
	var wg gosync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		f := open(t, path, &Options{CreateIfMissing: true})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for done := 0; done < rounds; {
				m, err := f.List(ctx)
				if err != nil {
					errc <- err
					return
				}
				n, _ := strconv.Atoi(m["COUNT"].Value)
				errs, err := f.Apply(ctx, []destination.Change{
					{Key: "COUNT", Value: strconv.Itoa(n + 1), Expect: m["COUNT"].Version},
					{Key: fmt.Sprintf("W%d", w), Value: strconv.Itoa(done + 1), Expect: m[fmt.Sprintf("W%d", w)].Version},
				})
				switch {
				case err != nil:
					errc <- err
					return
				case errs[0] == nil:
					done++
				case !errors.Is(errs[0], destination.ErrConflict):
					errc <- errs[0]
					return
				}
				if errs[1] != nil {
					errc <- errs[1]
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	f := open(t, path, nil)
	m := list(t, f)
	if got := m["COUNT"].Value; got != strconv.Itoa(writers*rounds) {
		t.Fatalf("COUNT = %s, want %d: an update was lost", got, writers*rounds)
	}
}

func TestKeepsOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the file another owner")
	}
	path := filepath.Join(t.TempDir(), ".env")
	writeFile(t, path, "A=1\n")
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	f := open(t, path, nil)
	mustApply(t, f, destination.Change{Key: "B", Value: "2"})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 {
		t.Fatalf("owner after a rewrite %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
}
