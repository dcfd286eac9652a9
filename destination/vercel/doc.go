// Package vercel keeps secrets as the environment variables of a Vercel
// project, as the "vercel-project" destination of Vault's Secrets Sync
// does. Vercel publishes no Go SDK: Client is a small typed client of the
// REST API (https://api.vercel.com), written with net/http, and
// Destination is a destination.Destination built on it. Driver opens one
// from a registry.VercelProject; New opens one directly from Options.
// Package verceltest is a local fake of the API for tests.
//
// # Endpoints
//
// The client sends the requests that the official @vercel/sdk and the
// Vercel CLI send, with "Authorization: Bearer <token>" and, when the
// project belongs to a team, teamId in the query of every request:
//
//	GET    /v10/projects/{idOrName}/env?decrypt=true   list (following pagination.next as until)
//	GET    /v1/projects/{idOrName}/env/{id}            one variable, decrypted
//	POST   /v10/projects/{idOrName}/env                create (upsert=true on request)
//	PATCH  /v9/projects/{idOrName}/env/{id}            edit
//	DELETE /v9/projects/{idOrName}/env/{id}            delete
//
// # Token and permissions
//
// Options.Token (the registry's access_token) is a Vercel access token,
// made under Account Settings, Tokens, with its scope set to the team that
// owns the project (Options.TeamID, team_id), or to the personal account
// for a personal project. Vercel tokens have no finer scopes: a token acts
// with its user's role, which must let it read, create, edit and delete
// the project's environment variables in every configured target. A team
// Owner or Member can; a Developer needs the "Environment Variable
// Manager" extended permission; a Contributor needs the project's Admin
// role (a Project Developer manages development and preview variables
// only, so it cannot write production ones). A token that cannot reach the
// team or project gets 403 or 404: Apply stops at once with that error.
//
// # Entries and ownership
//
// An entry is the variable with the entry's key as its name, exactly
// Options.Targets (deployment_environments) as its targets, no git branch
// and no custom environment. Vercel lets several variables share a name
// when their targets differ; this package manages only that one.
//
// Every variable it creates carries the ownership marker in its comment:
// "managed-by: secretsync owner=<Owner>" (see Marker; Owner is the
// registry association's sync name), and every edit writes it again.
// List returns only variables with exactly that comment and the entry's
// targets. A variable with the same name and a target in common that is
// not an entry of this destination (no marker, another owner's marker, or
// other targets) is neither overwritten nor deleted: Apply reports
// destination.ErrNotOwned for it. Writing over such a variable takes a
// person: delete it, or set its comment to the marker to hand it over.
//
// # Names
//
// Vercel's names are ASCII letters, digits and '_', not starting with a
// digit, and the names it reserves for its function runtimes are refused
// (ReservedNames: AWS_SECRET_KEY, AWS_EXECUTION_ENV, the AWS_LAMBDA_*
// names, NOW_REGION, TZ, LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR; AWS_REGION
// and the AWS credential names are allowed). NormalizeKey fits a name
// rendered from the registry's template to them (every other character
// becomes '_', a leading digit gets a '_' before it); Apply refuses a key
// that breaks them with destination.ErrInvalidKey and never writes an
// altered one. With the registry's default template and secret-key
// granularity (the default for vercel-project) the secret app/prod of a
// mount with accessor kv_1a2b3c4d gives names such as
// vault_kv_1a2b3c4d_app_prod_DB_URL.
//
// # Values and limits
//
// Vercel allows 64 KB of environment variables per deployment, all
// variables together, so no value may exceed 64 KiB (DefaultMaxValueBytes);
// Edge Functions and Middleware read at most 5 KB per variable: set
// Options.MaxValueBytes to EdgeMaxValueBytes for such projects. Vercel
// checks the per-deployment total when it deploys, not when a variable is
// written, so a set of variables within every per-value limit can still
// fail a deployment. A value over the limit, one that is not valid UTF-8
// (the API carries JSON text), or one holding a NUL byte (no process
// environment can hold it) is refused with destination.ErrInvalidValue
// before any request. Values are otherwise kept byte for byte.
//
// # Variable types and write-only destinations
//
// Options.Type (variable_type) is the type of the variables created:
// "encrypted" (the default) can be read back; the destination lists
// values, asking the list to decrypt them and reading by id (four at a
// time) any that it did not decrypt (Vercel has deprecated decrypt on
// list). "sensitive"
// values can never be read back, through any endpoint: the destination is
// then write-only (destination.Capabilities.WriteOnly) and List returns
// each entry with an empty value and, as its version, the variable's id
// and updatedAt. Every write changes updatedAt, so a change made in the
// dashboard shows as a new version and the sync engine reports it as
// drift. Sensitive variables cannot target development (New refuses the
// combination, as Vercel does). The type applies when a variable is
// created; an existing variable keeps its type (Vercel never turns a
// sensitive variable back into a readable one).
//
// # Check-and-set and the race window
//
// Vercel has no conditional writes (destination.Capabilities.NoCheckAndSet).
// A version is "<id>:<updatedAt>". A create is a POST without upsert, which
// Vercel refuses with ENV_CONFLICT when a variable with the name and a
// target in common exists: "must not exist" holds on Vercel's side, and a
// list then tells destination.ErrConflict (the entry is there) from
// destination.ErrNotOwned. An update reads the variable by the id of its
// version, refuses (destination.ErrConflict) when it is gone, is not the
// entry, or has another updatedAt, and then edits it by id; a delete does
// the same and deletes by id. Writers in one process take turns per key.
// What remains is the time between that read and the edit or delete, one
// round trip: a write made by someone else in it is overwritten (an edit)
// or deleted, unnoticed. A variable deleted and created again in it is
// never touched (its id is new). Two writes of a variable within the same
// millisecond would share an updatedAt; Vercel's answers are slower than
// that. Nothing is checked after the write: Vercel keeps no history of a
// variable.
//
// # Deletion
//
// Vercel deletes a variable at once and keeps nothing to restore. A delete
// of a variable already gone succeeds. Deployments already built keep the
// value they were built with; changes of any kind reach only new
// deployments.
//
// # Requests
//
// Measured with verceltest's counters through a push sync.Syncer
// (TestRequestsPerKey), for n keys: creating them takes n + 1 requests (a
// list, then one POST each), updating them 2n + 1 (a list, then a read by
// id and a PATCH each), an idle round 1 (a list), deleting them 2n + 1 (a
// list, then a read by id and a DELETE each). A write-only (sensitive)
// round that wrote lists once more after its puts, for the new versions:
// n + 2 and 2n + 2. Where the list does not decrypt, each round of an
// encrypted destination reads every entry by id as well (n more).
//
// # Errors and retries
//
// Answers 429 and 5xx and connection errors are retried by the client
// (ClientOptions.MaxRetries, default 3): a 429 after the time its
// X-RateLimit-Reset header names (epoch seconds), or its Retry-After, if
// that is within ClientOptions.MaxWait; the rest with exponential backoff.
// A create without upsert is not retried after a 5xx or a lost
// connection, as it may have been applied. What still fails with 429,
// 5xx, or no answer matches destination.ErrUnavailable; Apply then stops,
// as it does at a cancelled context and at a 403 or a 404 of the project:
// the change in flight and every change not attempted get the error, which
// is also returned as the call's error. Other errors are per change
// (*destination.KeyError). The API's errors are *APIError (Op, Status,
// Code, Message). No error, and no String of any type of this package,
// holds a value or the token; a message of the API that quotes the value
// sent has it replaced by "*****".
//
// # Concurrency
//
// Client and Destination are safe for concurrent use. Close releases the
// client's idle connections.
package vercel
