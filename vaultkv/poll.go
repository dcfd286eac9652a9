package vaultkv

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/secretsync/secretsync/destination"
)

var _ destination.Notifier = (*KV)(nil)

// Notify polls Vault every Options.PollInterval and announces a change when
// what it sees differs from the previous poll, until ctx ends. The first
// poll sets the reference and announces nothing, except in the SecretPath
// layout on KV v2, where a version other than the one this KV last read or
// wrote is announced at once. In that layout, a poll that finds the version
// this KV last read or wrote itself announces nothing either: a sync's own
// write is no change to read again.
//
// The polls of every KV that shares a connection run on one scheduler of
// that connection: a watched KV costs no goroutine of its own between
// polls, only while its poll is in flight. The scheduler places each
// Notify's polls at a fixed point of its interval, chosen so that the
// polls of many KVs spread evenly over the interval, whenever they
// started: the first poll comes within one interval of the call. A poll
// that fails is skipped, not retried, so that polls stay spread after an
// outage of Vault; a poll still in flight when the next is due is
// skipped too.
//
// Cost of one poll: in the SecretPath layout one metadata read; in the
// SecretKey layout one LIST per directory under the prefix plus one metadata
// read per secret (current_version and the deletion state of the latest
// version are only in each secret's metadata). On KV v1, which has no
// metadata, the same counts of reads of the secrets themselves.
func (kv *KV) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if ctx.Err() != nil {
		return ch
	}
	w := &watcher{kv: kv, ctx: ctx, ch: ch, interval: kv.opt.PollInterval, index: -1}
	p := pollerOf(kv.conn, w)
	context.AfterFunc(ctx, func() { p.remove(w) })
	return ch
}

// poll runs one poll of w and announces a change.
func (w *watcher) poll() {
	defer w.busy.Store(false)
	sig, err := w.kv.Poll(w.ctx)
	if err != nil {
		return
	}
	changed := w.known && sig != w.last && !w.kv.ownSignature(sig)
	if !w.known {
		changed = w.kv.differsFromSeen(sig)
	}
	if changed {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	w.last, w.known = sig, true
}

// differsFromSeen reports whether a first poll's signature shows a
// version other than the one this KV last read or wrote (SecretPath on
// KV v2 only; false when it cannot tell).
func (kv *KV) differsFromSeen(sig string) bool {
	if kv.opt.Layout != SecretPath || kv.v1() {
		return false
	}
	kv.mu.Lock()
	known, seen := kv.mu.known, kv.mu.version
	kv.mu.Unlock()
	if !known {
		return false
	}
	v, _, _ := strings.Cut(sig, "/")
	if sig == "absent" {
		v = "0"
	}
	return v != strconv.Itoa(seen)
}

// ownSignature reports whether sig shows the version this KV last read or
// wrote itself, not deleted (SecretPath on KV v2 only): a poll that finds
// the secret moved on to it finds the KV's own doing, which its caller
// knows of already.
func (kv *KV) ownSignature(sig string) bool {
	if kv.opt.Layout != SecretPath || kv.v1() {
		return false
	}
	kv.mu.Lock()
	known, seen := kv.mu.known, kv.mu.version
	kv.mu.Unlock()
	return known && seen > 0 && sig == strconv.Itoa(seen)+"/false/false"
}

// Poll returns a signature of the versions Vault holds: it changes when a
// secret is written, deleted, undeleted or destroyed. On KV v1 it holds a
// salted fingerprint of each secret's data instead (never a value), which
// changes when any field does; a write of the same data changes nothing.
// Notify compares successive signatures; Poll is exported for callers that
// schedule polls themselves.
func (kv *KV) Poll(ctx context.Context) (string, error) {
	signature := kv.metaSignature
	at := kv.metaPath
	if kv.v1() {
		signature, at = kv.signatureV1, kv.v1Path
	}
	if kv.opt.Layout == SecretPath {
		return signature(ctx, at(""))
	}
	keys, err := kv.walk(ctx, "")
	if err != nil {
		return "", err
	}
	sigs := make([]string, len(keys))
	if err := kv.each(ctx, keys, func(ctx context.Context, i int, k string) (err error) {
		sigs[i], err = signature(ctx, at(k))
		return err
	}); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, k := range keys {
		fmt.Fprintf(&b, "%s=%s;", k, sigs[i])
	}
	return b.String(), nil
}

// metaSignature reads a secret's metadata and returns its current version
// with the deletion state of that version; "absent" when there is none.
func (kv *KV) metaSignature(ctx context.Context, p string) (string, error) {
	body, err := read(ctx, kv.conn, p)
	if err != nil {
		return "", err
	}
	if body == nil {
		return "absent", nil
	}
	st := decodeMetadata(body)
	return fmt.Sprintf("%d/%t/%t", st.version, st.deleted, st.destroyed), nil
}
