package destination_test

import (
	"errors"
	"testing"

	"github.com/secretsync/secretsync/destination"
)

func TestCheckKey(t *testing.T) {
	good := []string{"DB_URL", "a/b", "nested/path/KEY", "..a", "a..", ".env", "a/.b/c", "a.b"}
	bad := []string{"", ".", "..", "/a", "a/", "a//b", "../x", "a/../b", "a/./b", "a/..", "../../other-team/DB_PASSWORD", "//"}
	for _, k := range good {
		if err := destination.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range bad {
		err := destination.CheckKey(k)
		if !errors.Is(err, destination.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}
