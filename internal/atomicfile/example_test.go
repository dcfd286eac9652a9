package atomicfile_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/secretsync/secretsync/internal/atomicfile"
)

func Example() {
	dir, err := os.MkdirTemp("", "atomicfile-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "catalog.json")

	// Hold the lock for as long as the file is ours; a second holder gets
	// ErrLocked (where the system has flock).
	unlock, err := atomicfile.Lock(path + ".lock")
	if err != nil {
		log.Fatal(err)
	}
	defer unlock()

	if err := atomicfile.Write(path, []byte(`{"entries":[]}`), 0o600); err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	// Output: {"entries":[]}
}
