package vaulttest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// RateLimitOptions adjust RateLimit.
type RateLimitOptions struct {
	// Rate is how many requests the quota lets through per Interval; 0
	// means 1.
	Rate float64
	// Interval is the quota's window; 0 means one second. A long interval
	// (an hour) with Rate 1 makes every request after the first one answer
	// 429 for the rest of the test: see Quota.Exhaust.
	Interval time.Duration
	// BlockInterval, when set, blocks a client that went over the rate
	// for that long.
	BlockInterval time.Duration
}

// Quota is a rate-limit quota made by RateLimit.
type Quota struct {
	s *Server
	// Name is the quota's name under sys/quotas/rate-limit.
	Name string
	// Path is the path it applies to, for example "kv-1a2b3c/".
	Path string
}

// RateLimit sets a rate-limit quota (sys/quotas/rate-limit) on path, a
// mount such as "kv-1a2b3c/" or a path below one, and removes it when the
// test ends (or earlier, with Remove). Requests over the rate are answered
// 429 Too Many Requests, whatever their token: fixtures that read the
// same path with the root token count too. Vault allows one quota per
// path.
// A nil options means the zero RateLimitOptions.
func (s *Server) RateLimit(t testing.TB, path string, options *RateLimitOptions) *Quota {
	var opts RateLimitOptions
	if options != nil {
		opts = *options
	}
	t.Helper()
	if opts.Rate == 0 {
		opts.Rate = 1
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	q := &Quota{s: s, Name: "q-" + randomHex(6), Path: path}
	data := map[string]any{"path": path, "rate": opts.Rate, "interval": opts.Interval.String()}
	if opts.BlockInterval > 0 {
		data["block_interval"] = opts.BlockInterval.String()
	}
	if _, err := s.Client(t).Logical().WriteWithContext(context.Background(), "sys/quotas/rate-limit/"+q.Name, data); err != nil {
		t.Fatalf("vaulttest: rate-limit quota on %s: %v", path, err)
	}
	t.Cleanup(func() {
		c, err := s.newClient()
		if err == nil {
			_, _ = c.Logical().DeleteWithContext(context.Background(), "sys/quotas/rate-limit/"+q.Name)
		}
	})
	return q
}

// Remove deletes the quota; requests on its path are no longer limited.
func (q *Quota) Remove(t testing.TB) {
	t.Helper()
	if _, err := q.s.Client(t).Logical().DeleteWithContext(context.Background(), "sys/quotas/rate-limit/"+q.Name); err != nil {
		t.Fatalf("vaulttest: remove quota %s: %v", q.Name, err)
	}
}

// Exhaust sends requests on the quota's path until Vault answers one with
// 429, so that the next request on the path within the quota's interval
// is refused too. It fails the test when no 429 comes within 1,000
// requests.
func (q *Quota) Exhaust(t testing.TB) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	url := strings.TrimRight(q.s.Addr, "/") + "/v1/" + strings.TrimRight(q.Path, "/") + "/config"
	for range 1000 {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatalf("vaulttest: exhaust quota: %v", err)
		}
		req.Header.Set("X-Vault-Token", q.s.Token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("vaulttest: exhaust quota: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			return
		}
	}
	t.Fatalf("vaulttest: quota %s on %s: no 429 after 1,000 requests", q.Name, q.Path)
}

// RevokeToken revokes token at once, as an operator would.
func (s *Server) RevokeToken(t testing.TB, token string) {
	t.Helper()
	if err := s.Client(t).Auth().Token().RevokeOrphanWithContext(context.Background(), token); err != nil {
		t.Fatalf("vaulttest: revoke token: %v", err)
	}
}

// RevokeTokens revokes every token issued by a login with the role, as an
// operator cleaning up after a leaked secret_id would, and returns how many
// it revoked. The connections that use them notice on their next request.
func (r *Role) RevokeTokens(t testing.TB) int {
	t.Helper()
	ctx := context.Background()
	c := r.s.Client(t)
	list, err := c.Logical().ListWithContext(ctx, "auth/token/accessors")
	if err != nil {
		t.Fatalf("vaulttest: list token accessors: %v", err)
	}
	if list == nil {
		return 0
	}
	keys, _ := list.Data["keys"].([]any)
	n := 0
	for _, k := range keys {
		acc, _ := k.(string)
		look, err := c.Logical().WriteWithContext(ctx, "auth/token/lookup-accessor", map[string]any{"accessor": acc})
		if err != nil || look == nil {
			continue // revoked or expired meanwhile
		}
		meta, _ := look.Data["meta"].(map[string]any)
		if name, _ := meta["role_name"].(string); name != r.Name {
			continue
		}
		if _, err := c.Logical().WriteWithContext(ctx, "auth/token/revoke-accessor", map[string]any{"accessor": acc}); err != nil {
			t.Fatalf("vaulttest: revoke token of role %s: %v", r.Name, err)
		}
		n++
	}
	return n
}

// TransitKey is a Transit encryption key in a mount of its own, made by
// NewTransitKey.
type TransitKey struct {
	s *Server
	// Mount is the Transit mount, for example "transit-1a2b3c".
	Mount string
	// Name is the key's name.
	Name string
}

// NewTransitKey enables a Transit secrets engine at a fresh mount, creates
// an aes256-gcm96 key in it, and disables the mount when the test ends.
func (s *Server) NewTransitKey(t testing.TB) *TransitKey {
	t.Helper()
	ctx := context.Background()
	c := s.Client(t)
	k := &TransitKey{s: s, Mount: "transit-" + randomHex(6), Name: "k-" + randomHex(4)}
	if err := c.Sys().MountWithContext(ctx, k.Mount, &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("vaulttest: enable transit: %v", err)
	}
	t.Cleanup(func() { _ = c.Sys().UnmountWithContext(context.Background(), k.Mount) })
	if _, err := c.Logical().WriteWithContext(ctx, k.Mount+"/keys/"+k.Name, map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatalf("vaulttest: create transit key: %v", err)
	}
	return k
}

// Rotate makes a new version of the key; ciphertext made with older
// versions still decrypts (and can be rewrapped) until their minimum
// decryption version is raised.
func (k *TransitKey) Rotate(t testing.TB) {
	t.Helper()
	if _, err := k.s.Client(t).Logical().WriteWithContext(context.Background(), k.Mount+"/keys/"+k.Name+"/rotate", nil); err != nil {
		t.Fatalf("vaulttest: rotate transit key: %v", err)
	}
}
