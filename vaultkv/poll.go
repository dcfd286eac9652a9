package vaultkv

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/secretsync/secretsync/destination"
)

var _ destination.Notifier = (*KV)(nil)

// Notify polls Vault every Options.PollInterval and announces a change when
// what it sees differs from the previous poll, until ctx ends. The first
// poll sets the reference and announces nothing.
//
// Cost of one poll: in the SecretPath layout one metadata read; in the
// SecretKey layout one LIST per directory under the prefix plus one metadata
// read per secret (current_version and the deletion state of the latest
// version are only in each secret's metadata). On KV v1, which has no
// metadata, the same counts of reads of the secrets themselves. Failed
// polls are skipped.
func (kv *KV) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(kv.opt.PollInterval)
		defer t.Stop()
		last, err := kv.Poll(ctx)
		known := err == nil
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sig, err := kv.Poll(ctx)
			if err != nil {
				continue
			}
			if known && sig != last {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			last, known = sig, true
		}
	}()
	return ch
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
