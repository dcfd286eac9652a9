package dotenv

import (
	"context"
	"os"
	"time"

	"github.com/secretsync/secretsync/destination"
)

// PollInterval is how often Notify looks at the file.
const PollInterval = time.Second

var _ destination.Notifier = (*File)(nil)

// Notify looks at the file every PollInterval and announces a change when
// its size, modification time or identity (a rename over it) differs from
// the last look, until ctx ends. It reads only the file's metadata.
func (f *File) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(PollInterval)
		defer t.Stop()
		last, _ := os.Stat(f.path)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, _ := os.Stat(f.path)
			if changed(last, now) {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			last = now
		}
	}()
	return ch
}

func changed(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) || !os.SameFile(a, b)
}
