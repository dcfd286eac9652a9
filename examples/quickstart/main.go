// Command quickstart shows secretsync end to end against a real HashiCorp
// Vault: it pushes a host's secrets into KV v2 under a key schema, over an
// AppRole login, shows a bidirectional conflict being flagged and resolved,
// and prints the reports and the audit trail.
//
// It starts a Vault dev server in Docker (see scripts/quickstart, which
// makes sure Docker and the image are there), or uses the server named by
// VAULT_ADDR and VAULT_TOKEN. Secret values are never printed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"path"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/conflict"
	"github.com/secretsync/secretsync/connection"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/state"
	"github.com/secretsync/secretsync/sync"
	"github.com/secretsync/secretsync/vaultkv"
	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

func main() {
	log.SetFlags(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatalf("quickstart: %v", err)
	}
}

func run(ctx context.Context) error { return runTo(ctx, os.Stdout) }

// runTo runs the demo, printing to out.
func runTo(ctx context.Context, out io.Writer) error {
	srv, err := vaulttest.Start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop(context.Background())
	fmt.Fprintf(out, "== Vault %s at %s\n", srv.Version, srv.Addr)

	// Set up, with the admin token: a KV v2 mount, a policy and an AppRole
	// role for the sync. secretsync itself logs in with the role.
	admin, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		return err
	}
	admin.SetToken(srv.Token)
	mount := "quickstart-" + suffix()
	kvOpts := vaultkv.Options{Mount: mount, Path: "apps", Layout: vaultkv.SecretKey, Owner: "quickstart"}
	// The exact policy this configuration needs, and no more.
	policy, err := vaultkv.Policy(vaultkv.PolicySpec{KV: []vaultkv.KVAccess{{Options: kvOpts, Write: true}}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "== the role's policy, from vaultkv.Policy:\n%s", policy)
	creds, err := setUp(ctx, admin, mount, policy)
	if err != nil {
		return err
	}
	defer admin.Sys().UnmountWithContext(context.Background(), mount)
	// A secret that is not ours, outside the key schema: it stays as it is.
	if _, err := admin.KVv2(mount).Put(ctx, "apps/legacy/SMTP_URL", map[string]any{"value": "smtp://legacy"}); err != nil {
		return err
	}

	trail := audit.NewRecorder()
	conn, err := connection.New(ctx, connection.Config{
		Address: srv.Addr,
		AppRole: &connection.AppRole{RoleID: creds.roleID, SecretID: connection.Credential{Value: creds.secretID}},
	}, &connection.Options{Name: "quickstart-vault", Auditor: trail})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	fmt.Fprintf(out, "== connection: %v\n", conn)

	vault, err := vaultkv.New(ctx, conn, &kvOpts)
	if err != nil {
		return err
	}
	host := memory.New(map[string]string{
		"DB_PASSWORD": "correct-horse",
		"API_TOKEN":   "tok-123",
		"SMTP_PASS":   "mail-pass",
	})
	s, err := sync.New(sync.Config{
		Name:        "quickstart",
		Description: "host secrets to the prod environment in Vault",
		Source:      host,
		Destination: vault,
		Mode:        sync.Bidirectional,
		KeySchema:   "{{environment}}/{{secretKey}}",
		Environment: "prod",
		Store:       state.NewMemory(),
		Auditor:     audit.Prefix(connection.EventPrefix, trail),
	})
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "\n== first round: push under the key schema into %s/apps/prod/\n", mount)
	if err := round(ctx, s, out); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== both sides change DB_PASSWORD: a conflict, neither side written")
	host.Set("DB_PASSWORD", "host-rotated")
	if _, err := admin.KVv2(mount).Patch(ctx, "apps/prod/DB_PASSWORD", map[string]any{"value": "vault-rotated"}); err != nil {
		return err
	}
	if err := round(ctx, s, out); err != nil {
		return err
	}
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	for _, c := range st.Conflicts {
		fmt.Fprintf(out, "flagged: %s (%s) since run %s\n", c.Key, c.Class, c.RunID)
	}

	fmt.Fprintln(out, "\n== resolve deliberately: keep Vault's value")
	if err := s.Resolve(ctx, "DB_PASSWORD", conflict.KeepDestination); err != nil {
		return err
	}
	if err := round(ctx, s, out); err != nil {
		return err
	}
	got, _ := host.Get("DB_PASSWORD")
	vs, err := admin.KVv2(mount).Get(ctx, "apps/prod/DB_PASSWORD")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "host and Vault agree on DB_PASSWORD: %v\n", got.Value == vs.Data["value"])

	fmt.Fprintln(out, "\n== audit trail (no values)")
	for _, e := range trail.Events() {
		fmt.Fprintf(out, "%-22s key=%-12s direction=%-15s outcome=%s\n", e.Type, e.Key, e.Direction, e.Outcome)
	}
	return nil
}

type roleCreds struct{ roleID, secretID string }

// setUp enables a KV v2 mount, the policy that lets the role manage it,
// and an AppRole role with short-lived tokens.
func setUp(ctx context.Context, c *api.Client, mount, policy string) (roleCreds, error) {
	if err := c.Sys().MountWithContext(ctx, mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return roleCreds{}, err
	}
	name := "secretsync-" + mount
	if err := c.Sys().PutPolicyWithContext(ctx, name, policy); err != nil {
		return roleCreds{}, err
	}
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return roleCreds{}, err
	}
	if _, ok := auths["approle/"]; !ok {
		if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
			return roleCreds{}, err
		}
	}
	role := path.Join("auth/approle/role", name)
	if _, err := c.Logical().WriteWithContext(ctx, role, map[string]any{"token_policies": name, "token_ttl": "5m", "token_max_ttl": "15m"}); err != nil {
		return roleCreds{}, err
	}
	r, err := c.Logical().ReadWithContext(ctx, role+"/role-id")
	if err != nil {
		return roleCreds{}, err
	}
	sid, err := c.Logical().WriteWithContext(ctx, role+"/secret-id", nil)
	if err != nil {
		return roleCreds{}, err
	}
	return roleCreds{roleID: r.Data["role_id"].(string), secretID: sid.Data["secret_id"].(string)}, nil
}

func round(ctx context.Context, s *sync.Syncer, out io.Writer) error {
	rep, err := s.Run(ctx)
	if err != nil {
		return err
	}
	return rep.WriteTable(out)
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
