//go:build linux

package faults_test

import (
	"os/signal"
	"syscall"
)

// ignoreSIGXFSZ keeps a write past RLIMIT_FSIZE from killing the process:
// it then fails with EFBIG.
func ignoreSIGXFSZ() { signal.Ignore(syscall.SIGXFSZ) }
