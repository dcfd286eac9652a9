package vaultkv

import (
	"context"
	"strings"
	gosync "sync"
	"time"
	"weak"

	"github.com/secretsync/secretsync/connection"
)

// mountTTL is how long the answer of one mount check serves the KVs and
// stores made later on the same connection.
const mountTTL = time.Minute

// mountKey names a mount as seen through one connection (its token, its
// namespace). The connection is held weakly: a connection no longer used
// is collected, and its entries swept.
type mountKey struct {
	conn  weak.Pointer[connection.Conn]
	mount string
}

// mountCheck is one read of a mount, shared by the callers that asked for
// it while it ran and, when it found a KV mount, by those that ask within
// mountTTL. info, err and at are set before done is closed.
type mountCheck struct {
	done chan struct{}
	info mountInfo
	err  error
	at   time.Time
}

// mounts holds the mount checks of every connection.
var mounts = struct {
	gosync.Mutex
	m map[mountKey]*mountCheck
}{m: map[mountKey]*mountCheck{}}

// checkMount returns what Vault says of mount, as readMount does, reading
// it once per connection and mount: concurrent callers share one read,
// and a KV mount's answer is kept for mountTTL, unless a read under the
// mount is refused or finds a secret gone meanwhile (see forgetMount). Errors, and answers of a
// mount that is absent or not KV, are never kept (the mount may be
// created or the policy fixed in a moment), and a caller that shared such
// a read makes its own.
func checkMount(ctx context.Context, conn *connection.Conn, mount string) (mountInfo, error) {
	key := mountKey{weak.Make(conn), mount}
	now := time.Now()
	mounts.Lock()
	c := mounts.m[key]
	if c != nil && !c.at.IsZero() && now.Sub(c.at) >= mountTTL {
		delete(mounts.m, key)
		c = nil
	}
	if c == nil {
		c = &mountCheck{done: make(chan struct{})}
		mounts.m[key] = c
		sweepMountsLocked(now)
		mounts.Unlock()
		info, err := readMount(ctx, conn, mount)
		mounts.Lock()
		c.info, c.err, c.at = info, err, time.Now()
		if (err != nil || !kept(info)) && mounts.m[key] == c {
			delete(mounts.m, key)
		}
		mounts.Unlock()
		close(c.done)
		return info, err
	}
	mounts.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return mountInfo{}, ctx.Err()
	}
	if c.err != nil || !kept(c.info) {
		return readMount(ctx, conn, mount)
	}
	return c.info, nil
}

// forgetMount drops the kept answer of the mount that holds p, read
// through conn: a read under it was refused, a list found nothing, or a
// secret seen before is gone, which is what a mount disabled, or a policy
// revoked, looks like too. The
// next New or NewStore then checks the mount again, so that a caller that
// opens a side anew to tell a deleted secret from a mount that is gone
// (as package registry does) is never answered from memory.
func forgetMount(conn *connection.Conn, p string) {
	w := weak.Make(conn)
	mounts.Lock()
	defer mounts.Unlock()
	for k, c := range mounts.m {
		if k.conn == w && strings.HasPrefix(p, k.mount+"/") && !c.at.IsZero() {
			delete(mounts.m, k)
		}
	}
}

// kept reports whether an answer is kept for later callers.
func kept(m mountInfo) bool { return m.typ == "kv" && (m.version == 1 || m.version == 2) }

// sweepMountsLocked forgets the answers that expired or whose connection
// is gone; mounts is locked.
func sweepMountsLocked(now time.Time) {
	for k, c := range mounts.m {
		if k.conn.Value() == nil || (!c.at.IsZero() && now.Sub(c.at) >= mountTTL) {
			delete(mounts.m, k)
		}
	}
}
