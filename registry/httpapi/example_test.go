package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/memory"
	"github.com/secretsync/secretsync/registry"
	"github.com/secretsync/secretsync/registry/httpapi"
	"github.com/secretsync/secretsync/sync"
)

// A GitHub repository destination created over Vault's API, a secret
// associated with it, and the audit trail of who did it. In-memory sides
// stand in for Vault and GitHub; a program serves the handler with
// http.Serve over httpapi.Listen.
func Example() {
	ctx := context.Background()
	secret := memory.New(map[string]string{"DB_URL": "postgres://db/app"})
	repo := memory.New(nil)
	reg := registry.New(&registry.Options{
		Drivers: map[string]registry.Driver{
			registry.TypeGitHubRepository: func(context.Context, registry.Target) (destination.Destination, error) {
				return repo, nil
			},
		},
		Source: func(context.Context, string, string) (destination.Reader, error) { return secret, nil },
	})
	events := audit.NewRecorder()
	h, err := httpapi.New(reg, &httpapi.Options{
		Token:         "s.example-token",
		TokenIdentity: "ops",
		Auditor:       events,
		Accessor: func(context.Context, string) (string, error) {
			return "kv_eb4acbae", nil // vaultkv's (*KV).MountAccessor in a real program
		},
	})
	if err != nil {
		panic(err)
	}

	call := func(method, path, body string) map[string]any {
		r := httptest.NewRequest(method, "http://127.0.0.1:8200"+path, strings.NewReader(body))
		r.Header.Set("X-Vault-Token", "s.example-token")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		fmt.Println(method, path, w.Code)
		return out
	}
	out := call("POST", "/v1/sys/sync/destinations/gh/my-repo",
		`{"access_token": "github_pat_12345", "repository_owner": "acme", "repository_name": "api"}`)
	fmt.Println(out["data"].(map[string]any)["connection_details"])

	out = call("POST", "/v1/sys/sync/destinations/gh/my-repo/associations/set",
		`{"mount": "my-kv", "secret_name": "app/prod"}`)
	assoc := out["data"].(map[string]any)["associated_secrets"].(map[string]any)["kv_eb4acbae/app/prod"].(map[string]any)
	fmt.Println(assoc["sync_status"])
	held, _ := repo.List(ctx)
	fmt.Println(len(held), "entry at the destination")

	out = call("DELETE", "/v1/sys/sync/destinations/gh/my-repo", "")
	fmt.Println(out["errors"])

	// Without the token:
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("LIST", "http://127.0.0.1:8200/v1/sys/sync/destinations", nil))
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	// From a page of another site:
	r := httptest.NewRequest("LIST", "http://127.0.0.1:8200/v1/sys/sync/destinations", nil)
	r.Header.Set("X-Vault-Token", "s.example-token")
	r.Header.Set("Origin", "https://evil.example")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))

	for _, e := range events.Events() {
		fmt.Println(e.Type, e.Outcome, e.Attrs["actor"])
	}
	// Output:
	// POST /v1/sys/sync/destinations/gh/my-repo 200
	// map[access_token:***** repository_name:api repository_owner:acme]
	// POST /v1/sys/sync/destinations/gh/my-repo/associations/set 200
	// SYNCED
	// 1 entry at the destination
	// DELETE /v1/sys/sync/destinations/gh/my-repo 400
	// [destination gh/my-repo has 1 association(s); remove them first, or delete with purge=true]
	// 401 {"errors":["missing client token"]}
	// 403 {"errors":["cross-origin request refused"]}
	// DESTINATION_WRITTEN success ops
	// ASSOCIATION_SET success ops
	// DESTINATION_DELETED failure ops
}

// Serving the handler: plain HTTP on loopback only; beyond it, TLS.
func ExampleListen() {
	reg := registry.New(nil)
	h, err := httpapi.New(reg, &httpapi.Options{TokenFile: "/run/secrets/secretsync-api-token"})
	if err != nil {
		log.Fatal(err)
	}
	l, err := httpapi.Listen("127.0.0.1:8200", nil, false)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(l))
}

// A program's own syncs served beside the registry: a trigger runs a
// round of a manual sync, its status and flagged conflicts are read, and a
// conflict is resolved by name, each call authenticated and the mutating
// ones audited with who made them.
func Example_syncs() {
	ctx := context.Background()
	src := memory.New(map[string]string{"DB_URL": "postgres://db/app"})
	dst := memory.New(nil)
	s, err := sync.New(sync.Config{Name: "app", Source: src, Destination: dst, Mode: sync.Bidirectional,
		AutoSync: sync.AutoSync{Disabled: true}}) // manual: a trigger runs the round
	if err != nil {
		panic(err)
	}
	events := audit.NewRecorder()
	h, err := httpapi.New(nil, &httpapi.Options{ // no registry: the sync resources alone
		Token:         "s.example-token",
		TokenIdentity: "ops",
		Auditor:       events,
		Syncs:         httpapi.SyncMap{"app": s},
	})
	if err != nil {
		panic(err)
	}
	call := func(method, path, body string) map[string]any {
		r := httptest.NewRequest(method, "http://127.0.0.1:8200"+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer s.example-token")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out struct {
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		fmt.Println(method, path, w.Code)
		return out.Data
	}

	out := call("POST", "/v1/secretsync/syncs/app/trigger", "")
	fmt.Println(" ", out["status"], out["report"].(map[string]any)["totals"].(map[string]any)["created"], "created")

	src.Set("DB_URL", "postgres://db/app2") // both sides change: a conflict
	dst.Set("DB_URL", "postgres://db/app3")
	if _, err := s.Run(ctx); err != nil {
		panic(err)
	}
	out = call("GET", "/v1/secretsync/syncs/app", "")
	fmt.Println(" ", out["mode"], out["sync"].(map[string]any)["status"], out["conflicts"], "flagged")
	out = call("GET", "/v1/secretsync/syncs/app/conflicts", "")
	c := out["conflicts"].([]any)[0].(map[string]any)
	fmt.Println(" ", c["key"], c["class"])
	call("POST", "/v1/secretsync/syncs/app/resolve", `{"key": "DB_URL", "action": "keep-destination"}`)

	for _, e := range events.Events() {
		if e.Type == httpapi.EventSyncTriggered || e.Type == httpapi.EventResolveRequested {
			fmt.Printf("%s sync=%s key=%q %s by %s\n", e.Type, e.Sync, e.Key, e.Outcome, e.Attrs["actor"])
		}
	}
	// Output:
	// POST /v1/secretsync/syncs/app/trigger 200
	//   completed 1 created
	// GET /v1/secretsync/syncs/app 200
	//   bidirectional conflicts 1 flagged
	// GET /v1/secretsync/syncs/app/conflicts 200
	//   DB_URL both-changed
	// POST /v1/secretsync/syncs/app/resolve 200
	// SYNC_TRIGGERED sync=app key="" success by ops
	// CONFLICT_RESOLVE_REQUESTED sync=app key="DB_URL" success by ops
}
