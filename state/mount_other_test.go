//go:build !linux

package state

import (
	"errors"
	"testing"
)

var errNoMount = errors.New("mounting a file system from a test is only done on Linux")

func mountSmall(*testing.T, string, int) error { return errNoMount }

func remount(string, bool) error { return errNoMount }
