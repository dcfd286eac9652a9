package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// TestOneMemberPerProcess: with the state in Vault and a registry, one
// syncd is one member of the replicas that spread the syncs (one lease
// under <path>/members), across a reload, and none once it stops. With a
// member for the syncs and another for the registry's associations, the
// syncs that hash to the other member would wait for the fallback, three
// lock TTLs (90 s here), before their first round.
func TestOneMemberPerProcess(t *testing.T) {
	srv := vaulttest.Get(t)
	stateMount, srcMount, dstMount := srv.NewMount(t), srv.NewMount(t), srv.NewMount(t)
	vc := srv.Client(t)
	ctx := context.Background()
	if _, err := vc.KVv2(srcMount).Put(ctx, "app", map[string]any{"DB": "one"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SYNCD_TEST_TOKEN", srv.Token)
	dir := t.TempDir()
	var syncs strings.Builder
	const n = 8 // config syncs: with two members, about half would hash to the registry's
	for i := range n {
		write(t, filepath.Join(dir, fmt.Sprintf("app%d.env", i)), fmt.Sprintf("A=%d\n", i))
		fmt.Fprintf(&syncs, `
sync "app%[1]d" {
  source {
    dotenv { path = %[2]q }
  }
  destination {
    vault {
      connection = "v"
      mount      = %[3]q
      path       = "apps/%[1]d"
    }
  }
}
`, i, filepath.Join(dir, fmt.Sprintf("app%d.env", i)), dstMount)
	}
	cfgPath := filepath.Join(dir, "syncd.hcl")
	write(t, cfgPath, fmt.Sprintf(`
state {
  connection = "v"
  mount      = %[1]q
  path       = "syncd"
  lock_ttl   = "30s"
}
connection "v" {
  address = %[2]q
  token { env = "SYNCD_TEST_TOKEN" }
}
registry {
  connection = "v"
  destination "vault-kv" "copy" {
    mount = %[3]q
    path  = "copy"
  }
  association "vault-kv" "copy" {
    mount       = %[4]q
    secret_name = "app"
  }
}
`, stateMount, srv.Addr, dstMount, srcMount)+syncs.String())

	members := func() []string {
		s, err := vc.Logical().ListWithContext(ctx, stateMount+"/metadata/syncd/members")
		if err != nil {
			t.Fatal(err)
		}
		if s == nil {
			return nil
		}
		var ids []string
		for _, k := range s.Data["keys"].([]any) {
			ids = append(ids, k.(string))
		}
		slices.Sort(ids)
		return ids
	}
	synced := func() bool {
		for i := range n {
			sec, err := vc.KVv2(dstMount).Get(ctx, fmt.Sprintf("apps/%d", i))
			if err != nil || sec.Data["A"] != fmt.Sprint(i) {
				return false
			}
		}
		sec, err := vc.KVv2(dstMount).Get(ctx, "copy")
		return err == nil && sec.Data[strings.Replace(registry.DefaultKeySchema(registry.SecretRef{Mount: srcMount, Name: "app"}), "{{secretKey}}", "DB", 1)] == "one"
	}

	stop, stderr := runSyncd(t, cfgPath, "127.0.0.1:0")
	waitFor(t, "every sync and the association to run their first round", synced)
	if m := members(); len(m) != 1 {
		t.Fatalf("members %v, want one for the process", m)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload", func() bool { return strings.Contains(stderr.String(), `"msg":"configuration reloaded"`) })
	write(t, filepath.Join(dir, "app0.env"), "A=changed\n")
	waitFor(t, "a change after the reload", func() bool {
		sec, err := vc.KVv2(dstMount).Get(ctx, "apps/0")
		return err == nil && sec.Data["A"] == "changed"
	})
	if m := members(); len(m) != 1 {
		t.Fatalf("after a reload, members %v, want one for the process", m)
	}

	stop()
	if m := members(); len(m) != 0 {
		t.Fatalf("after the stop, members %v, want none", m)
	}
}
