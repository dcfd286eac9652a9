// Package httpapi serves a registry of destinations over HTTP, with the
// paths, request bodies, response shapes and error bodies of Vault
// Enterprise's /sys/sync API, so that Vault's CLI habits, scripts and
// clients work against it; and, beside it, the project's own resources
// of syncs (status, trigger, plan, conflicts), for the program's syncs
// (Options.Syncs) and the registry's associations' (Options.RegistrySyncs).
//
// New returns an http.Handler; the program mounts it on its own server
// (the handler answers the paths under /v1/sys/sync/ and
// /v1/secretsync/, and 404 to the rest) and listens with Listen, which
// refuses plain HTTP beyond loopback unless told otherwise.
//
// # Endpoints
//
//	LIST   /v1/sys/sync/destinations                       (or GET with ?list=true)
//	GET    /v1/sys/sync/destinations/:type/:name
//	POST   /v1/sys/sync/destinations/:type/:name           (create or replace; PUT too)
//	DELETE /v1/sys/sync/destinations/:type/:name[?purge=true]
//	GET    /v1/sys/sync/destinations/:type/:name/associations
//	POST   /v1/sys/sync/destinations/:type/:name/associations/set     {"mount", "secret_name"}
//	POST   /v1/sys/sync/destinations/:type/:name/associations/remove  {"mount", "secret_name"}
//
// A create or update decodes its JSON body into the registry's Config of
// the type in the path (registry.AWSSecretsManager for aws-sm,
// registry.AzureKeyVault for azure-kv, registry.GCPSecretManager for
// gcp-sm, registry.GitHubRepository for gh, registry.VercelProject for
// vercel-project, registry.VaultKV for vault-kv, and the program's own
// types in Options.Types). A field the Config does not have is refused.
// The body replaces the destination's whole Config: a field left out takes
// its default, it is not kept from the previous Config.
//
// Every answer is in Vault's envelope (request_id, lease_id, renewable,
// lease_duration, data, wrap_info, warnings, auth), with a random UUID as
// request_id; a delete answers 204 with no body, as Vault does. Every error
// is Vault's {"errors": ["..."]}: 400 for a bad request (a Config field
// that is missing or malformed is named, its value never is; a destination
// that still has associations), 401 when no credentials came, 403 when
// they are wrong or when the Host or Origin is refused, 404 for an unknown
// destination or path, 405 for a method the path does not have, 413 for a
// body over Options.MaxRequestBytes, 500 otherwise.
//
// A delete is refused (400) while the destination has associations; with
// purge=true it unsyncs them first, one by one, and stops at the first
// that fails (500, with the reason); deleting again resumes. The registry's
// Force (drop the associations and leave their entries behind) is not
// offered: Vault's API has no such parameter.
//
// Credentials never leave: a destination's connection_details show every
// registry.Credential as "*****".
//
// Associations are keyed by "accessor/secret_name" as in Vault: the mount
// accessor comes from Options.Accessor, and is the mount path when it is
// nil or fails (with a warning in the answer).
//
// Setting or removing an association syncs or unsyncs at once (the
// registry's Set and Remove). When the association is recorded but its
// sync fails, the answer is still 200, as in Vault where the sync runs
// after the answer: the association's sync_status tells the outcome, and
// the reason is in warnings.
//
// # Sync resources
//
//	GET    /v1/secretsync/syncs                       every sync and its status
//	GET    /v1/secretsync/syncs/:name                 one sync's status
//	POST   /v1/secretsync/syncs/:name/trigger[?wait=true]
//	GET    /v1/secretsync/syncs/:name/plan            what a round would change (a dry run)
//	GET    /v1/secretsync/syncs/:name/conflicts       the flagged conflicts
//	POST   /v1/secretsync/syncs/:name/resolve         {"key": "...", "action": "keep-source"}
//
// They live under SyncPrefix, outside Vault's /v1/sys/ tree, so that they
// can never collide with a path of Vault's. The syncs are those of
// Options.Syncs (a program's own, for example SyncMap), then, with
// Options.RegistrySyncs, those of the registry's associations, by their
// sync names (registry.Association.SyncName).
//
// Answers use the same envelope as Vault's paths (the sync resources'
// object in data), and the same error body; an error of a round or a plan
// that has a report carries it in data, beside errors. The JSON inside is
// one style: snake_case names, times in RFC 3339 (UTC), modes, actions,
// directions, conflict classes and statuses by the names the sync and
// conflict packages give them (SyncInfo, Record, Report, KeyResult,
// Conflict, TriggerResult, ResolveResult). A sync's status shows the last
// record of each operation (sync, import, remove; null when it never ran),
// the latest of them as last_round, and how many conflicts are flagged.
//
// A trigger of a sync with auto-sync asks its Watch for a round
// (Syncer.Trigger; the program runs Watch) and answers 202 at once; a
// trigger of a manual sync, or with wait=true, runs the round during the
// request and answers 200 with its report. A plan answers the report of
// Syncer.Plan: keys and actions, nothing written. A resolution names its
// action as conflict.Kind does: "keep-source" or "keep-destination";
// resolving with a value of one's own is not offered, since the value
// would travel in a request (call Syncer.Resolve with conflict.UseValue).
//
// Errors: 404 for an unknown sync or a key with no flagged conflict; 409
// when another replica holds the sync's lock, the round or plan was
// refused as a mass deletion, or the resolution cannot be made (a
// write-only destination); 502 when a side or the store failed, or a key
// of the round failed; 400 for a bad body or parameter. No answer holds a
// value: reports, plans and conflicts carry key names and actions only.
//
// # Authentication
//
// Authentication is required by default, and New refuses to build a
// handler without one of:
//
//   - Options.Token: a token, presented as "Authorization: Bearer <token>"
//     or as Vault's "X-Vault-Token: <token>", compared in constant time;
//   - Options.TokenFile: a file that holds the token, read by New and read
//     again when it changes (its size, modification time or inode; replace
//     it by renaming a new file over it, as Kubernetes does with secrets);
//   - Options.Authenticate: the program's own check (mTLS, an identity
//     proxy, a session), which returns who made the request.
//
// Options.NoAuth serves without authentication, and must be set
// explicitly. Missing credentials get 401 (with WWW-Authenticate: Bearer),
// wrong ones 403, both in Vault's error body; the answer never says more.
//
// # Origin and Host
//
// A browser on the same host must not be able to drive the API. Requests
// are refused (403) when their Host is not one of Options.Hosts (by
// default the loopback names and addresses: "localhost", 127.0.0.0/8,
// ::1), which defeats DNS rebinding; when they carry an Origin that is not
// the listener's own (the scheme and Host of the request) nor one of
// Options.Origins; or when the browser says they are cross-site
// (Sec-Fetch-Site), which defeats cross-site request forgery even without
// authentication.
//
// # Audit
//
// Every mutating call (create, update, delete, set, remove; trigger and
// resolve of the sync resources), successful or not, emits one audit.Event to Options.Auditor, after the call, with who
// made it (the identity, never the token) in Attrs["actor"]; requests that
// would have mutated and were refused (authentication, Host, Origin) emit
// EventRequestDenied. Events hold names, never values or credentials.
// Reads are not audited. When the Auditor fails, the answer carries a
// warning; the change has been made.
//
// # Concurrency
//
// The handler is safe for concurrent use; the registry serializes the
// operations on each association.
package httpapi
