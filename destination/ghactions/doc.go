// Package ghactions is a sync destination for GitHub Actions secrets: a
// repository's, one of its environments', or an organization's, written
// through GitHub's REST API with go-github and sealed with libsodium
// sealed boxes (golang.org/x/crypto/nacl/box), as GitHub requires.
//
// Open one directly with [New], or register [Driver] for the registry's
// "gh" type (registry.GitHubRepository). Package ghactionstest is a local
// GitHub API for tests, which the examples and tests of this package use.
//
// # Token and permissions
//
// Options.Token (the config's access_token) is sent as a bearer token. A
// fine-grained personal access token or a GitHub App installation needs
// these permissions (repository permissions, and for organization
// secrets the organization permission), and a classic token (or OAuth
// app token) this scope:
//
//	location      fine-grained permissions       classic scope
//	repository    Secrets: Read and write        repo
//	environment   Secrets: Read and write        repo
//	              Environments: Read and write
//	              Metadata: Read-only
//	organization  Secrets: Read and write        admin:org
//
// GitHub asks both Secrets and Environments of every request for
// environment secrets; Metadata is for GET /repos/{owner}/{repo}, which
// gives the repository's id that those requests take, and GitHub grants
// it with every fine-grained token that has a repository permission.
// These are what GitHub's REST documentation lists for the requests the
// destination sends, and no more: the package's tests take this table,
// run a whole cycle (list, create, update, delete) with exactly each set
// against ghactionstest, which refuses what the documentation says GitHub
// refuses, and check that the cycle fails without any one of them, and
// at the first write with Secrets (or Environments) Read-only. The
// documentation names repo, not public_repo, for public repositories
// too. For organization secrets it adds that a classic token needs repo
// as well "if the repository is private", a sentence that every
// organization endpoint carries without naming a repository and that
// the tests do not cover.
//
// A refused token (401, a 403 that is not a rate limit, or a 404 whose
// headers say that a classic token lacks the scope: GitHub answers 404
// rather than confirm that a private repository exists) stops Apply at
// the first change, since every other request would be refused too and
// GitHub locks out an account after repeated bad credentials. The error
// of a refusal for want of a permission says what GitHub says is needed.
// For a fine-grained token or a GitHub App it is the
// X-Accepted-GitHub-Permissions header of the 403:
//
//	ghactions: GitHub Actions secrets of environment "prod" of acme/api:
//	list secrets: GET https://api.github.com/repositories/1/environments/prod/secrets?page=1&per_page=100:
//	403 Resource not accessible by personal access token []; the token
//	lacks a permission: GitHub requires the repository permission
//	"Environments: Read-only" and the repository permission "Secrets:
//	Read-only" (X-Accepted-GitHub-Permissions: environments=read,secrets=read)
//
// For a classic token it is X-Accepted-OAuth-Scopes, when X-OAuth-Scopes
// (the token's own scopes) has none of them: "the token lacks a scope:
// GitHub accepts the scope admin:org, and the token has repo". Neither
// header, nor any error, holds the token.
//
// # Write-only, and what a version is
//
// GitHub never returns a secret's value. The destination is write-only
// (destination.Capabilities.WriteOnly): List returns every secret of the
// place with an empty value and, as its Version, its updated_at in RFC
// 3339 as GitHub sends it ("2026-01-02T15:04:05Z"). The engine remembers
// the marker it lists after its own writes; any other marker is a change
// made at the destination, which a push reports as drift instead of
// overwriting silently. Only a push can sync to this destination.
//
// updated_at has one-second resolution, and that is the window that
// remains for detecting writes by others:
//
//   - Two writes of one secret within the same second leave the same
//     updated_at. A write by someone else in the same second as the sync's
//     own write is not seen as a change: the sync takes the marker for its
//     own, and the other writer's value stays unnoticed until the sync
//     next writes the key.
//   - Likewise, a write by someone else in the same second as the write
//     whose marker the sync read is not refused by the next put, which
//     replaces it (a lost update); nor is a delete and re-creation within
//     one second seen at all.
//   - Between the sync's write and the List that reads its marker (the
//     rest of the round's writes, typically well under a second per key),
//     a write by someone else is taken for the sync's own.
//
// Writes more than a second apart, with no List in between, are always
// told apart. ghactionstest models this resolution; its TickingClock
// makes every write a second apart for tests that need distinct markers.
//
// # No check-and-set
//
// GitHub cannot make a write conditional (the NoCheckAndSet capability).
// Apply narrows the race as far as the API allows:
//
//   - Before a put or a delete it reads the secret (GET, one request) and
//     refuses with destination.ErrConflict when its updated_at is not
//     Change.Expect, or when Expect is "" and the secret exists.
//   - A put answered 201 (created) when the secret was read as present, or
//     204 (updated) when it was read as absent, means someone deleted or
//     created it between the read and the write: the write happened, and
//     Apply reports ErrConflict so that the engine looks again.
//   - Changes of one key through one Destination are serialized, so two
//     of them never both pass the read.
//
// What remains is a write by someone else between the read and the write
// (one round trip) that a put then replaces, or that a delete deletes,
// and the one-second window above.
//
// # Ownership
//
// GitHub keeps nothing on a secret besides its name and two times: there
// is no tag, label or description where a "managed-by: secretsync" marker
// could live. So the destination cannot tell the sync's secrets from
// others': List returns them all, Apply never reports
// destination.ErrNotOwned, and registry.Target.Owner is not used.
// Ownership rests on the sync's own state instead: the engine knows which
// keys it wrote (its baseline), manages only the names its naming (key
// schema or name template) produces, and keeps its hands off every other
// name. What that means:
//
//   - Secrets under other names are never touched, whoever wrote them.
//   - A create (Change.Expect "") never replaces a secret of the same name:
//     Apply finds it and reports ErrConflict.
//   - A secret that someone else created under a name the sync manages,
//     before the sync first wrote it, is not taken over: the engine's first
//     round flags it as a conflict (a write-only store's values cannot be
//     compared), and only a deliberate resolution (Syncer.Resolve with
//     conflict.KeepSource, or a conflict policy that says so) replaces it;
//     from then on it is the sync's, which removing the association
//     deletes. Choose names that nobody else writes: the default name
//     template prefixes them with the mount and the secret path
//     (VAULT_<MOUNT>_<PATH>_<KEY>).
//   - Losing the sync's state (a deleted state file) loses the knowledge
//     of what it wrote: the next round starts as a first round, and flags
//     every managed name that exists.
//
// # Names
//
// GitHub secret names are letters, digits and '_', do not start with a
// digit nor with GITHUB_, and are case-insensitive: GitHub stores them
// upper-case. [NormalizeKey] upper-cases a name, turns every other
// character into '_', prefixes a leading digit with '_', and refuses
// (destination.ErrInvalidKey) a name that would start with GITHUB_. Apply
// refuses a key that is not already a name as GitHub stores it, so that
// the secret it writes is listed back under the very key it was given.
//
// # Limits
//
// A value is at most 48 KB (49,152 bytes); a longer one, or one that is
// not valid UTF-8 (the Actions runner reads secrets as UTF-8 text), gets
// destination.ErrInvalidValue and is not sent. GitHub keeps at most 100
// secrets per repository, 100 per environment and 1,000 per
// organization; a put beyond that fails with GitHub's 422. Lists are read
// 100 secrets per request.
//
// # Deletion
//
// A delete removes the secret at once (DELETE, 204); GitHub keeps no
// deleted secrets and nothing can be recovered. A secret already gone
// counts as deleted (404 is success), whatever Expect says.
//
// # Keys, rotation and requests
//
// The place's public key is fetched once per Destination and cached by
// its key id. When GitHub refuses a sealed value with 422 (the key was
// rotated), the destination fetches the key again and, when its id
// changed, writes once more. The requests, counted on the local server:
//
//   - List: one request per 100 secrets.
//   - A put: GET then PUT (two requests), plus the public key once per
//     Destination (and, for environment secrets, the repository once).
//   - A delete: GET then DELETE; GET alone when the secret is gone.
//
// Through the engine, a round that creates N keys or updates N keys
// lists the place twice (before, and after the writes to read the
// markers) and sends 2N requests more; an idle round lists once. For 60
// repository secrets: 123 requests to create them (2.05 per key), 122 to
// update them, 1 for an idle round.
//
// # Errors
//
// Rate limits (go-github's *github.RateLimitError and
// *github.AbuseRateLimitError: go-github does not retry), 5xx answers and
// connection failures match destination.ErrUnavailable, and Apply stops
// at the first. Errors keep go-github's error in their chain (use
// errors.As with *github.ErrorResponse); they name keys, never values.
// A refusal for want of a permission or scope also says what GitHub says
// is needed (see Token and permissions). The token appears in no error
// or String.
package ghactions
