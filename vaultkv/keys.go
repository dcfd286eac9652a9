package vaultkv

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	gosync "sync"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/destination"
)

// listKeys lists every secret under the prefix, recursively, and reads each.
func (kv *KV) listKeys(ctx context.Context) (map[string]destination.Secret, error) {
	keys, err := kv.walk(ctx, "")
	if err != nil {
		return nil, err
	}
	type result struct {
		key  string
		info keyInfo
		err  error
	}
	out := make(map[string]destination.Secret, len(keys))
	infos := make(map[string]keyInfo, len(keys))
	jobs := make(chan string)
	results := make(chan result)
	var wg gosync.WaitGroup
	for w := 0; w < min(kv.opt.Concurrency, max(1, len(keys))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				info, err := kv.readKey(ctx, k)
				results <- result{k, info, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, k := range keys {
			select {
			case jobs <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var firstErr error
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		infos[r.key] = r.info
		if r.info.data != nil && !r.info.deleted {
			out[r.key] = destination.Secret{Value: text(r.info.data[kv.opt.Field]), Version: strconv.Itoa(r.info.version)}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	kv.mu.Lock()
	kv.mu.keys = infos
	// The walk saw every secret with metadata: a key it did not see is
	// absent, with no version, until something says otherwise.
	kv.mu.listed = true
	kv.mu.stale = map[string]bool{}
	kv.mu.Unlock()
	return out, nil
}

// walk lists the keys under dir (relative to the prefix), recursively.
func (kv *KV) walk(ctx context.Context, dir string) ([]string, error) {
	p := kv.metaPath(dir)
	var sec *api.Secret
	err := kv.conn.Do(ctx, "list", p, "list", func(c *api.Client) (err error) {
		sec, err = c.Logical().ListWithContext(ctx, p)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("vaultkv: list %s: %w", p, err)
	}
	if sec == nil || sec.Data == nil {
		return nil, nil
	}
	raw, _ := sec.Data["keys"].([]any)
	var out []string
	for _, r := range raw {
		name, _ := r.(string)
		if name == "" {
			continue
		}
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
	var sec *api.Secret
	err := kv.conn.Do(ctx, "read", p, "read", func(c *api.Client) (err error) {
		sec, err = c.Logical().ReadWithContext(ctx, p)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return keyInfo{}, ctx.Err()
		}
		return keyInfo{}, fmt.Errorf("vaultkv: read %s: %w", p, err)
	}
	var body map[string]any
	if sec != nil {
		body = sec.Data
	}
	st := decodeData(body)
	return keyInfo{version: st.version, deleted: st.gone(), owned: st.owner == kv.opt.Owner && st.owner != "", data: st.data}, nil
}

// applyKeys applies each change to its own secret.
func (kv *KV) applyKeys(ctx context.Context, changes []destination.Change) ([]error, error) {
	errs := make([]error, len(changes))
	for i, c := range changes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		switch {
		case c.Key == "" || strings.HasPrefix(c.Key, "/") || strings.HasSuffix(c.Key, "/") || strings.Contains(c.Key, "//"):
			err = destination.ErrInvalidKey
		case c.Delete:
			err = kv.deleteKey(ctx, c)
		default:
			err = kv.putKey(ctx, c)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs[i] = &destination.KeyError{Op: opOf(c), Key: c.Key, Err: err}
		}
	}
	return errs, nil
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
		if err := kv.setOwner(ctx, c.Key, kv.opt.Owner); err != nil {
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
	var sec *api.Secret
	err = kv.conn.Do(ctx, "write", p, "update", func(cl *api.Client) (err error) {
		sec, err = cl.Logical().WriteWithContext(ctx, p, map[string]any{"data": data, "options": map[string]any{"cas": cas}})
		return err
	})
	if err != nil {
		kv.forgetKey(c.Key)
		if isCASMismatch(err) {
			if mark && !exists {
				// Someone else created it meanwhile: it is not ours.
				_ = kv.setOwner(context.WithoutCancel(ctx), c.Key, "")
			}
			return destination.ErrConflict
		}
		return err
	}
	nv := cas + 1
	if sec != nil {
		if v := intOf(sec.Data["version"]); v > 0 {
			nv = v
		}
	}
	kv.remember(c.Key, keyInfo{version: nv, owned: true, data: data})
	return nil
}

// setOwner sets the ownership marker of key to owner, or removes it when
// owner is empty. Other custom metadata is replaced.
func (kv *KV) setOwner(ctx context.Context, key, owner string) error {
	mp := kv.metaPath(key)
	md := map[string]any{}
	if owner != "" {
		md[OwnerKey] = owner
	}
	return kv.conn.Do(ctx, "write", mp, "update", func(cl *api.Client) error {
		_, err := cl.Logical().WriteWithContext(ctx, mp, map[string]any{"custom_metadata": md})
		return err
	})
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
		p := kv.metaPath(c.Key)
		err = kv.conn.Do(ctx, "delete", p, "delete", func(cl *api.Client) error {
			_, err := cl.Logical().DeleteWithContext(ctx, p)
			return err
		})
	case kv.opt.Destroy:
		p := path.Join(kv.opt.Mount, "destroy", kv.opt.Path, c.Key)
		err = kv.conn.Do(ctx, "write", p, "update", func(cl *api.Client) error {
			_, err := cl.Logical().WriteWithContext(ctx, p, versions)
			return err
		})
	default:
		p := path.Join(kv.opt.Mount, "delete", kv.opt.Path, c.Key)
		err = kv.conn.Do(ctx, "write", p, "update", func(cl *api.Client) error {
			_, err := cl.Logical().WriteWithContext(ctx, p, versions)
			return err
		})
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
