package state

import (
	"fmt"
	"syscall"
	"testing"
)

// mountSmall mounts a tmpfs of size bytes on dir, unmounted when the test
// ends (after Files opened later are closed). It returns an error where
// mounting is not permitted (not root, no CAP_SYS_ADMIN).
func mountSmall(t *testing.T, dir string, size int) error {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return nil
}

// remount makes the file system mounted on dir read-only or writable.
func remount(dir string, readOnly bool) error {
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_NOSUID | syscall.MS_NODEV)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, ""); err != nil {
		return fmt.Errorf("remount %s (read-only %v): %w", dir, readOnly, err)
	}
	return nil
}
