// Command syncd is a sync daemon built on secretsync: it runs the syncs
// declared in an HCL configuration file, by itself, and serves health,
// readiness and Prometheus metrics, and, on a listener of its own behind
// a bearer token, an HTTP API of its syncs (and of its registry).
//
// Sources and destinations are Vault KV v2 (so it can sync Vault to Vault)
// and dotenv files; the registry block adds the external destinations
// (AWS Secrets Manager, Azure Key Vault, Google Secret Manager, GitHub
// Actions, Vercel). Credentials come from files or environment variables
// named in the configuration; the configuration never holds a secret. See
// example.hcl.
//
// To deploy it, see docs/operations.md in the repository: the FROM-scratch
// image (Dockerfile, scripts/syncd-image), the systemd unit
// (syncd.service), the configuration reference, the Vault policies, the
// metrics and the alerting rules (alerts.yml).
//
// # Flags
//
//	syncd -config syncd.hcl          run every sync with auto-sync, serve HTTP
//	syncd -config syncd.hcl -once    one round of every sync, the reports, an exit status
//	syncd -config syncd.hcl -plan    what a round would change, without applying it
//	syncd -config syncd.hcl -check   validate the configuration, offline, and exit
//	syncd -version                   the version, the commit when known, the Go version
//
//	-config file      the configuration (default syncd.hcl)
//	-listen address   the HTTP address; overrides listen in the file
//
// -once, -plan and -check exclude each other. -check never contacts Vault,
// takes no lock and writes nothing, so it can check the file of a running
// daemon before a SIGHUP: it loads and validates the file, builds each
// connection's client (reading its TLS files) and reads its credential
// file or variable, opens and parses the dotenv sides, builds each sync
// with the engine (a Vault side stood in for by an in-memory one), and
// checks the directories of the state and audit files. It cannot tell
// whether Vault is reachable, accepts the credentials, has the mounts or
// grants the policies: the daemon checks the mounts when it starts (or
// reloads) and refuses a configuration that fails there. -version reads the
// commit from the build information, which `go build` records in a git work
// tree unless -buildvcs=false; a release sets the version with
// -ldflags "-X main.version=v1.2.3".
//
// # Subcommands
//
// These talk to a running daemon over its HTTP API, on the api block's
// listener, with its token (the subcommand comes first, its flags and
// arguments after it):
//
//	syncd status                                       every sync: mode, auto or manual, latest status, conflicts
//	syncd conflicts [sync ...]                         flagged conflicts of the syncs named, or of all
//	syncd resolve sync key keep-source|keep-destination  settle a flagged conflict
//	syncd trigger sync                                 a round now (an auto-synced sync runs it in the
//	                                                   background; a manual one's report is printed)
//	syncd plan sync                                    what a round would change (keys and actions)
//	syncd destinations [-type T -name N]               the registry's destinations by type, or one
//	                                                   with its connection details (credentials *****)
//	syncd associations -type T -name N                 the secrets associated with a destination,
//	                                                   with their sync status and time
//
//	-addr address     the API's host:port or http(s) URL; default: listen of
//	                  the api block in the -config file, else 127.0.0.1:8201
//	                  (a listen address on every interface, such as ":8201",
//	                  is called on loopback)
//	-config file      the configuration whose api block gives the address and
//	                  the token file (default syncd.hcl, used when it exists)
//	-token-file file  the file holding the API's token; default: token_file
//	                  of the api block in the -config file
//	-json             print the daemon's JSON (status: the list of syncs;
//	                  conflicts: one list, each with its sync; the others:
//	                  the answer's data) instead of a table
//	-timeout d        how long to wait for an answer (default 30s)
//
// status, conflicts, resolve, trigger and plan call the sync resources
// (/v1/secretsync/syncs, below); destinations and associations the
// registry's API (Vault's /v1/sys/sync), whose -json prints the answer
// with Vault's envelope. Without an api block the daemon serves no API,
// and the subcommands say so (exit 2) unless -addr and -token-file name
// one.
//
// They print names, statuses, times and one-line errors, never a secret
// value or credential (the APIs carry none), and of an answer that is not
// the API's JSON only its HTTP status.
//
// # Exit status
//
//	0  clean: the daemon stopped on SIGTERM or SIGINT; -once or -plan found
//	   nothing wrong; -check found the configuration valid; -version, -help
//	1  failure: a sync's round failed, or a key in it (-once, -plan); the
//	   configuration cannot be built (a connection, the state store, a
//	   mount, a dotenv file, the audit file), or the address cannot be
//	   listened on; -check found a problem (each is printed, one a line)
//	2  usage: a bad flag or argument, -once/-plan/-check together, or a
//	   configuration file that cannot be read or does not validate (each
//	   problem with its file, line and field)
//	3  conflicts (-once, -plan): nothing failed, but conflicts are flagged,
//	   waiting for a resolution, or (-plan) a round would flag some
//
// A failure wins over conflicts: a run with both exits 1.
//
// The subcommands exit with the same statuses: 0 done (status and
// conflicts: no conflict flagged); 1 the daemon cannot be reached or
// refused the call (no such sync or conflict, a failed resolution, a
// wrong token), the token file cannot be read, status found a sync whose
// latest round failed, trigger's manual round failed or plan's would fail
// (or a key in it); 2 usage (a bad flag, a wrong number of arguments, a
// choice other than keep-source or keep-destination, a -config file that
// cannot be read or does not validate, no token file); 3 conflicts are
// flagged (status, conflicts), trigger's manual round flagged some, or
// plan's round would flag some. destinations and
// associations exit 0 when done; 1 when the API cannot be reached, the
// token file cannot be read, the API refused (a wrong token, no such
// destination), or (associations) an association's status is neither
// SYNCED nor PENDING; 2 usage (a bad flag, an argument, -type without
// -name or the reverse, associations without both, no token file).
//
// # Configuration
//
// Top-level attributes and blocks (see example.hcl and the Config type):
//
//	listen = "127.0.0.1:8080"     HTTP address of healthz, readyz and metrics
//	                              (no authentication: read-only)
//	api { listen, token_file, tls_cert, tls_key,
//	  allow_plaintext_non_loopback, hosts }
//	                              the API, on a listener of its own (see API)
//	ready_grace = "5m"            how long an auto-synced sync may fail before
//	                              /readyz says not ready (default 0: at once)
//	state { file = … }            baselines and status in a file (one daemon),
//	  transit { connection, mount, key }   its fingerprint key sealed with Transit
//	state { connection, mount, path, lock_ttl }
//	                              or in Vault KV v2, shared by replicas, with a
//	                              lock per sync: one replica runs it, the others
//	                              stand by
//	audit { file = "/var/log/syncd/audit.jsonl" }
//	                              audit events as JSON lines in this file
//	                              (mode 0600, opened again on SIGHUP) instead
//	                              of the log
//	connection "name" { address, namespace, ca_cert, ca_path, client_cert,
//	  client_key, tls_server_name, tls_skip_verify, timeout,
//	  token { file | env }, approle { role_id, secret_id_file | secret_id_env,
//	  wrapped, mount } }
//	registry { connection, poll_interval, transit { mount, key },
//	  destination "vault-kv" "name" { mount, path, layout },
//	  destination "aws-sm|azure-kv|gcp-sm|gh|vercel-project" "name" {
//	    the type's config fields; <field>_file | <field>_env },
//	  association "vault-kv" "name" { mount, secret_name, key_schema,
//	    disable_deletion } }
//	                              a registry of destinations and associations
//	                              and Vault's /sys/sync API (see Registry)
//	sync "name" { description, mode, initial_sync, key_schema, environment,
//	  disable_deletion, max_delete_fraction,
//	  auto_sync { enabled, interval, debounce },
//	  source { vault { … } | dotenv { path } },
//	  destination { vault { connection, mount, path, layout, field,
//	    poll_interval, adopt_unowned } | dotenv { path } } }
//
// A configuration needs a sync block or a registry block, or both.
//
// # API
//
// The api block serves the daemon's API (package registry/httpapi) on a
// listener of its own: the sync resources of every sync of the running
// configuration (and of the registry's associations, by their sync
// names), and, with a registry block, Vault's /sys/sync API (see
// Registry). Without it the daemon serves no API: its syncs run, and
// healthz, readyz and metrics answer on listen.
//
//	listen           host:port (default 127.0.0.1:8201), not listen's
//	token_file       required: the file holding the bearer token, read
//	                 again when it changes (replace it by renaming a new
//	                 file over it)
//	tls_cert, tls_key  PEM files: serve TLS
//	allow_plaintext_non_loopback  plain HTTP beyond loopback is refused
//	                 unless this is true
//	hosts            the Host headers accepted (default: the loopback
//	                 names and addresses; "*" any, behind a proxy that
//	                 checks it)
//
// Every request carries the token, as "Authorization: Bearer <token>" or
// "X-Vault-Token: <token>": one without gets 401, a wrong one 403. A
// request whose Host is not accepted, whose Origin is not the listener's,
// or that the browser says is cross-site (Sec-Fetch-Site), gets 403:
// neither a page in a browser on the host nor DNS rebinding can drive it.
// Every mutating call (trigger, resolve; create, delete, set, remove of
// the registry), and every refused one, is audited with who made it
// (Attrs["actor"]: "token"), where the daemon's audit events go. -check
// reads the token file and the TLS files. The api block cannot change on
// reload (restart syncd); it may also be written inside the registry
// block, its older place, but not in both.
//
// Answers are in Vault's envelope ({"request_id", "data", "warnings",
// ...}), errors {"errors": ["one line"]}; the JSON inside is in one style:
// snake_case fields, times in RFC 3339 (UTC), modes, actions, classes and
// statuses by name, never a value.
//
//	GET  /v1/secretsync/syncs                every sync with its status records
//	GET  /v1/secretsync/syncs/{name}         one sync: records of sync, import and remove,
//	                                         last_round, flagged conflicts
//	POST /v1/secretsync/syncs/{name}/trigger a round now: 202 for an auto-synced sync; a
//	                                         manual one's report, 200, or 502 (409) with its
//	                                         error and report; ?wait=true runs any sync's
//	                                         round during the request
//	GET  /v1/secretsync/syncs/{name}/plan    what a round would change: keys and actions
//	GET  /v1/secretsync/syncs/{name}/conflicts  flagged conflicts
//	POST /v1/secretsync/syncs/{name}/resolve {"key": "A", "action": "keep-source"|"keep-destination"}
//
// A status record is pending (a round is scheduled, or keys changed
// during the last one and are read again), running, succeeded (every key
// written), conflicts (conflicts are flagged, waiting for a resolution)
// or failed; its message is one line.
//
// # Registry
//
// The registry block runs a registry.Registry (package registry) and
// serves Vault's /v1/sys/sync API over it (package registry/httpapi), as
// Vault Enterprise's Secrets Sync does: destinations, and associations of
// KV v2 secrets with them, which keep syncing.
//
//	connection       the Vault connection (a connection block) over which
//	                 the associated secrets are read and vault-kv
//	                 destinations written; the registry opens a connection
//	                 of its own with it (its own token or login)
//	poll_interval    how often each association runs a round (reads the
//	                 secret and the destination); default 1m. Vault
//	                 Community Edition has no events: a change of a
//	                 secret arrives within about one interval
//	destination      a destination declared at start: vault-kv (a KV v2
//	                 mount, path and layout, written over the registry's
//	                 connection) or one of the external types, whose
//	                 drivers are linked into syncd with their default
//	                 DriverOptions (each reaches its cloud's public API):
//	                 aws-sm, azure-kv, gcp-sm, gh, vercel-project. An
//	                 external one's attributes are the fields of its
//	                 typed config (registry.AWSSecretsManager,
//	                 AzureKeyVault, GCPSecretManager, GitHubRepository,
//	                 VercelProject) under their JSON names, for example
//	                 region, recovery_window_days, custom_tags = { … },
//	                 repository_owner, deployment_environments = [ … ].
//	                 A credential field (access_token, secret_access_key,
//	                 client_secret, credentials, …) is best given as
//	                 <field>_file (the file's content, trimmed) or
//	                 <field>_env (an environment variable): those are
//	                 read when syncd starts and by -check, not when the
//	                 file is loaded, and changing them takes a restart.
//	                 A credential written in the file as is is read as
//	                 is, and the file must then be mode 0600: -check
//	                 fails otherwise. Destinations of every type can
//	                 also be created over the API
//	association      a secret (mount, secret_name) associated with a
//	                 destination declared in the file, with an optional
//	                 key_schema and disable_deletion
//	transit          mount (default "transit") and key of a Vault Transit
//	                 key, reached over the registry's connection, that
//	                 seals the credentials kept in the catalog (below)
//
// Vault's API is served on the api block's listener, with its token and
// guard (see API); without an api block the registry runs its declared
// associations and serves nothing. A vault-kv destination created over
// the API names the registry's
// connection: {"connection": "<name>", "mount": …, "path": …, "layout": …}.
// Association answers key secrets by the mount's accessor, as Vault does.
//
// With a state block, destinations and associations (declared or created
// over the API) are kept in the state store as the registry's catalog
// (registry.Options.Catalog): a restart finds them again, and replicas
// sharing a state store in Vault see each other's and take turns with
// its locks. The catalog never holds a credential in plain text: each is
// sealed by the transit block's key, or, with a state file and no transit
// block, by a key in <file>.catalog-key (mode 0600; keep it apart from
// backups of the state file). With the state in Vault and no transit
// block, a destination that holds a credential is refused (and -check
// says so). Without a state block the registry lives in memory and a
// restart forgets what was created over the API. The declared
// ones are set again at each start, each synced at once; one whose first
// sync fails is logged and retried by the watch, while one the registry
// refuses (an overlapping key schema, a bad mount) stops the start.
//
// # Signals
//
// SIGHUP opens the audit file again at its path (so that log rotation can
// move it away first), then reloads the configuration: one that does not
// load or cannot be built is refused, logged with its cause, and the
// running one goes on untouched. The registry is not rebuilt: it keeps
// running across a reload, with what was created over the API, and a
// reload that changes the registry block, the registry's connection block
// or the state block is refused (restart syncd for those), as is one
// that changes the api block. The API's
// token file is read again whenever it changes, with no reload. SIGTERM
// and SIGINT stop the API (requests in flight get 5 seconds), let the
// rounds in flight finish, close the registry's destinations and exit.
//
// # HTTP
//
// listen serves, without authentication, read-only answers only; every
// answer but /metrics is JSON (snake_case fields, times in RFC 3339, UTC),
// and errors are {"error": "one line"} (also for an unknown path or
// method). The syncs' API is not here: it needs the token (see API).
//
//	GET  /healthz   the process is up: {"status": "ok"}
//	GET  /readyz    200 when ready, 503 when not, with each auto-synced sync's state
//	GET  /metrics   Prometheus exposition formats
//
// # Readiness
//
// /readyz is ready while every auto-synced sync is: its latest round
// succeeded (flagged conflicts do not make it unready; alert on
// secretsync_flagged_conflicts), or its rounds (or taking its lock) have
// been failing for less than ready_grace, or another replica holds its
// lock (this one stands by). A sync that has not finished a round yet is
// not ready. A round in which a key failed counts as failed. Manual syncs
// do not count. Each sync's state is one of waiting, standby, succeeded,
// failing (within the grace: ready) and failed.
//
// Every association of the registry counts too, named by its sync name
// with "association": "<type>/<destination> <mount>/<secret>": SYNCED
// and UNSYNCED are succeeded, PENDING (between operations, loaded and not
// run yet, or handed over to the replica that runs it) is pending and
// ready, and a failed status (INTERNAL_VAULT_ERROR, CLIENT_SIDE_ERROR,
// EXTERNAL_SERVICE_ERROR) is failing from its first failure in a row
// (the association's failing_since), then failed after ready_grace.
//
// # Metrics
//
// On a registry of the daemon's own. Every configured sync has its series
// from the start, at 0 (operation "sync" and "resolve"; the four actions),
// manual ones included; a sync removed by a reload loses them.
//
//	secretsync_round_duration_seconds{sync,operation}    histogram  rounds, by operation: sync, or resolve (a conflict resolved through the API)
//	secretsync_rounds_total{sync}                        counter    rounds run, resolutions included
//	secretsync_round_failures_total{sync}                counter    rounds that failed, or in which a key failed
//	secretsync_keys_changed_total{sync,action}           counter    keys written: created, updated, deleted, imported
//	secretsync_key_failures_total{sync}                  counter    keys whose write failed
//	secretsync_flagged_conflicts{sync}                   gauge      conflicts waiting for a resolution (kept when a round cannot read the state)
//	secretsync_last_success_timestamp_seconds{sync}      gauge      end of the latest successful round, Unix seconds; 0 before the first
//	secretsync_build_info{version,revision,goversion}    gauge      always 1
//	go_*, process_*                                                 the Go runtime and process collectors
package main
