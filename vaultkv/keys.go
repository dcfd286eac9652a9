package vaultkv

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination"
)

// listKeys lists every secret under the prefix, recursively, and reads
// each. It stops at the first error, cancelling the reads in flight.
func (kv *KV) listKeys(ctx context.Context) (map[string]destination.Secret, error) {
	keys, err := kv.walk(ctx, "")
	if err != nil {
		return nil, err
	}
	infos := make([]keyInfo, len(keys))
	if err := kv.each(ctx, keys, func(ctx context.Context, i int, k string) (err error) {
		infos[i], err = kv.readKey(ctx, k)
		return err
	}); err != nil {
		return nil, err
	}
	out := make(map[string]destination.Secret, len(keys))
	known := make(map[string]keyInfo, len(keys))
	for i, k := range keys {
		info := infos[i]
		known[k] = info
		if info.data != nil && !info.deleted {
			out[k] = destination.Secret{Value: text(info.data[kv.opt.Field]), Version: strconv.Itoa(info.version)}
		}
	}
	kv.mu.Lock()
	kv.mu.keys = known
	// The walk saw every secret with metadata: a key it did not see is
	// absent, with no version, until something says otherwise.
	kv.mu.listed = true
	kv.mu.stale = map[string]bool{}
	kv.mu.Unlock()
	return out, nil
}

// each runs fn for every key, at most Options.Concurrency at a time. It
// stops at the first error, which it returns, cancelling the calls in
// flight; a cancelled ctx returns ctx.Err().
func (kv *KV) each(ctx context.Context, keys []string, fn func(ctx context.Context, i int, key string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(kv.opt.Concurrency)
	for i, k := range keys {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i, k) })
	}
	err := g.Wait()
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// walk lists the keys under dir (relative to the prefix), recursively:
// LIST on the metadata (KV v2) or on the secrets' own paths (KV v1).
func (kv *KV) walk(ctx context.Context, dir string) ([]string, error) {
	p := kv.metaPath(dir)
	if kv.v1() {
		p = kv.v1Path(dir)
	}
	names, err := list(ctx, kv.conn, p)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("vaultkv: list %s: %w", p, err)
	}
	var out []string
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			sub, err := kv.walk(ctx, dir+name)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, dir+name)
	}
	return out, nil
}

// readKey reads one secret with its metadata.
func (kv *KV) readKey(ctx context.Context, key string) (keyInfo, error) {
	p := kv.dataPath(key)
	body, err := read(ctx, kv.conn, p)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return keyInfo{}, cerr
		}
		return keyInfo{}, fmt.Errorf("vaultkv: read %s: %w", p, err)
	}
	st := decodeData(body)
	return keyInfo{version: st.version, deleted: st.gone(), owned: st.owner == kv.opt.Owner && st.owner != "", data: st.data}, nil
}

// applyKeys applies each change to its own secret, in order. It stops at
// a cancelled ctx, or at the first error that says Vault cannot serve
// (destination.ErrUnavailable): the change in flight gets its error, the
// changes not attempted get the stopping error, and the changes applied
// before keep their nil result.
func (kv *KV) applyKeys(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, kv.applyKey, nil)
}

// applyKey applies c to its own secret.
func (kv *KV) applyKey(ctx context.Context, c destination.Change) error {
	// Every key is checked before any path is built from it, so that no
	// write lands outside Mount/Path (see keyPath).
	err := checkName(c.Key)
	if err == nil && kv.v1() {
		err = checkNameV1(c.Key)
	}
	if err == nil {
		err = checkValue(c)
	}
	switch {
	case err != nil:
		return err
	case c.Delete && kv.v1():
		return kv.deleteKeyV1(ctx, c)
	case c.Delete:
		return kv.deleteKey(ctx, c)
	case kv.v1():
		return kv.putKeyV1(ctx, c)
	default:
		return kv.putKey(ctx, c)
	}
}

// info returns what is known of key, reading it when it is not known.
func (kv *KV) info(ctx context.Context, key string) (keyInfo, error) {
	kv.mu.Lock()
	info, ok := kv.mu.keys[key]
	absent := !ok && kv.mu.listed && !kv.mu.stale[key]
	kv.mu.Unlock()
	if ok || absent {
		// Possibly out of date: every write is check-and-set, so a stale
		// entry costs a precondition failure, never a lost update.
		return info, nil
	}
	return kv.readKey(ctx, key)
}

func (kv *KV) remember(key string, info keyInfo) {
	kv.mu.Lock()
	if kv.mu.keys == nil {
		kv.mu.keys = map[string]keyInfo{}
	}
	kv.mu.keys[key] = info
	kv.mu.Unlock()
}

func (kv *KV) forgetKey(key string) {
	kv.mu.Lock()
	delete(kv.mu.keys, key)
	if kv.mu.stale != nil {
		kv.mu.stale[key] = true
	}
	kv.mu.Unlock()
}

func (kv *KV) putKey(ctx context.Context, c destination.Change) error {
	info, err := kv.info(ctx, c.Key)
	if err != nil {
		return err
	}
	exists := info.data != nil && !info.deleted
	cas := info.version // for a create over a deleted secret: its current version
	switch {
	case c.Expect == "" && exists:
		return destination.ErrConflict
	case c.Expect != "" && (!exists || c.Expect != strconv.Itoa(info.version)):
		return destination.ErrConflict
	case exists && !info.owned && !kv.opt.AdoptUnowned:
		return destination.ErrNotOwned
	case !exists && info.version > 0 && !info.owned && !kv.opt.AdoptUnowned:
		// A deleted secret that someone else created.
		return destination.ErrNotOwned
	}
	mark := !info.owned
	if mark {
		// Mark the secret as ours before writing it, so that a failure
		// between the two writes never leaves a secret of ours without the
		// marker (which would then be refused as not owned forever).
		if err := kv.mark(ctx, c.Key); err != nil {
			kv.forgetKey(c.Key)
			return fmt.Errorf("vaultkv: mark %s as owned: %w", kv.metaPath(c.Key), err)
		}
	}
	data := map[string]any{}
	for k, v := range info.data {
		data[k] = v
	}
	data[kv.opt.Field] = c.Value
	p := kv.dataPath(c.Key)
	// The secret's metadata exists (it carries the marker), so Vault
	// checks the update capability, also for a first version.
	resp, err := write(ctx, kv.conn, p, capUpdate, map[string]any{"data": data, "options": map[string]any{"cas": cas}})
	if err != nil {
		kv.forgetKey(c.Key)
		if isCASMismatch(err) {
			if mark && !exists {
				// Someone else created it meanwhile: it is not ours.
				_ = kv.unmark(context.WithoutCancel(ctx), c.Key)
			}
			return destination.ErrConflict
		}
		return err
	}
	nv := decodeWrite(resp, cas)
	kv.remember(c.Key, keyInfo{version: nv, owned: true, data: data})
	return nil
}

// mark adds the ownership marker to key's custom_metadata with a JSON
// merge patch, which keeps every other field (an operator's team=payments,
// say). Vault answers a patch of a secret without metadata with 404: mark
// then creates the metadata with the marker alone. A secret created by
// someone else between that answer and the create would have its custom
// metadata replaced: the data write that follows then fails its
// check-and-set, and unmark removes the marker again, but not their
// fields. That window is one round trip wide.
func (kv *KV) mark(ctx context.Context, key string) error {
	mp := kv.metaPath(key)
	md := map[string]any{"custom_metadata": map[string]any{OwnerKey: kv.opt.Owner}}
	err := patch(ctx, kv.conn, mp, md)
	if connection.Status(err) != http.StatusNotFound {
		return err
	}
	_, err = write(ctx, kv.conn, mp, capCreate, md)
	return err
}

// unmark removes the ownership marker from key's custom_metadata with a
// JSON merge patch, keeping every other field.
func (kv *KV) unmark(ctx context.Context, key string) error {
	return patch(ctx, kv.conn, kv.metaPath(key), map[string]any{"custom_metadata": map[string]any{OwnerKey: nil}})
}

func (kv *KV) deleteKey(ctx context.Context, c destination.Change) error {
	info, err := kv.info(ctx, c.Key)
	if err != nil {
		return err
	}
	if info.data == nil || info.deleted {
		return nil // already gone
	}
	if !info.owned && !kv.opt.AdoptUnowned {
		return destination.ErrNotOwned
	}
	// Check the version right before deleting: KV v2 has no check-and-set
	// delete, but deleting a given version never touches a newer one.
	fresh, err := kv.readKey(ctx, c.Key)
	if err != nil {
		return err
	}
	if fresh.data == nil || fresh.deleted {
		kv.remember(c.Key, fresh)
		return nil
	}
	if c.Expect != strconv.Itoa(fresh.version) {
		kv.remember(c.Key, fresh)
		return destination.ErrConflict
	}
	versions := map[string]any{"versions": []int{fresh.version}}
	switch {
	case kv.opt.DeleteMetadata:
		err = remove(ctx, kv.conn, kv.metaPath(c.Key))
	case kv.opt.Destroy:
		_, err = write(ctx, kv.conn, kv.keyPath(kindDestroy, c.Key), capUpdate, versions)
	default:
		_, err = write(ctx, kv.conn, kv.keyPath(kindDelete, c.Key), capUpdate, versions)
	}
	if err != nil {
		kv.forgetKey(c.Key)
		return err
	}
	if kv.opt.DeleteMetadata {
		kv.forgetKey(c.Key)
	} else {
		kv.remember(c.Key, keyInfo{version: fresh.version, deleted: true, owned: fresh.owned})
	}
	return nil
}
