// Package azurekv uses the secrets of an Azure Key Vault as a sync
// destination (the azure-kv type of package registry), through the official
// Azure SDK for Go: azsecrets for the vault, azidentity for Microsoft Entra.
// Each key of a sync is one Key Vault secret; its value is the secret's
// value and its version the secret's current version id.
//
// # Connecting
//
// Options.VaultURL is the vault's URL (https://<vault>.vault.azure.net, or
// vault.azure.cn and vault.usgovcloudapi.net in the China and US Government
// clouds). The credentials are an app registration's client credentials
// (TenantID, ClientID, ClientSecret), exchanged for a token with the
// Microsoft Entra authority of Options.Cloud ("" or "AzurePublic",
// "AzureChina", "AzureUSGovernment"); Options.Credential takes any other
// azcore.TokenCredential instead, such as a managed identity. The SDK sends
// its first request without a token, reads the tenant and the resource
// (https://vault.azure.net) from the vault's 401 challenge, checks that the
// resource belongs to the vault's host, gets one token and reuses it until
// it nears expiry. New sends no request; the package reads no environment
// variable (the cloud is always explicit), though MSAL itself honours
// AZURE_REGIONAL_AUTHORITY_NAME.
//
// Driver builds Options from a registry.AzureKeyVault: KeyVaultURI,
// TenantID, ClientID, ClientSecret, Cloud, Purge and SyncOptions.CustomTags,
// with the association (registry.Target.Owner) as the owner.
//
// # Permissions
//
// With Azure RBAC, the Key Vault Secrets Officer role on the vault (data
// actions Microsoft.KeyVault/vaults/secrets/*). With access policies, these
// secret permissions: get and list (List, and the reads before each write),
// set (writes), delete (deletes), recover (reusing a name this sync
// soft-deleted) and purge (only with Options.Purge). A missing permission
// fails the change that needed it (403) with a message naming the role; it
// does not stop the round.
//
// # Names
//
// Key Vault secret names are 1 to 127 ASCII letters, digits and '-', and
// are compared without regard to case ("DB-URL" and "db-url" are one
// secret; the spelling of the first write is kept and listed). Apply
// refuses any other key with destination.ErrInvalidKey, before any request.
// NormalizeKey, which package registry applies to every name its templates
// render, maps every other character to '-' (one per character:
// "vault/kv_1a2b/app/prod" becomes "vault-kv-1a2b-app-prod") and refuses a
// name that is empty or longer than 127 characters. Distinct names can
// normalize to one ("a/b" and "a_b"), and names that differ only in case
// are one secret: a create of such a name finds the other's secret and
// fails with destination.ErrConflict (or destination.ErrNotOwned), never
// writing over it.
//
// # Limits
//
// A value is at most 25 KiB (25,600 bytes of UTF-8) and must be valid UTF-8
// (the wire format is JSON text); a value over the limit or not valid UTF-8
// is refused with destination.ErrInvalidValue before any request, never
// stored altered. Empty values, NUL and control characters are kept
// exactly. A version has at most 15 tags (the ownership marker takes one or
// two), tag names of at most 512 and values of at most 256 characters: New
// refuses Options.Tags beyond that with ErrInvalidOptions.
//
// # Ownership
//
// Every version this package writes carries the tags managed-by=secretsync
// (TagManagedBy) and, when Options.Owner is set, secretsync-owner=<Owner>
// (TagOwner), beside Options.Tags. Tags are per version in Key Vault, so
// every write sets them again, keeping the tags that others put on the
// version it replaces (and its content type). List returns only secrets
// whose current version carries this owner's marker; Apply refuses to
// overwrite or delete a secret without it, and refuses a create over one,
// with destination.ErrNotOwned. A soft-deleted secret keeps its tags, and
// the same rule holds for it: a name held by someone else's deleted secret
// is refused with ErrNotOwned, and left deleted.
//
// # Check-and-set
//
// Key Vault cannot make a write conditional on a version
// (destination.Capabilities.NoCheckAndSet). This package narrows the race
// as far as the service allows. A put of an existing key lists the
// secret's versions, reads the current version and refuses
// (destination.ErrConflict, nothing written) when it is not Change.Expect
// or the secret is not owned; a create reads and refuses when the secret
// exists. After the write it lists the versions again: a version that was
// not there before and was created no later than ours (Key Vault keeps
// creation times to the second, so a version of the same second counts)
// was written by someone else between our read and our write, and the
// change is reported as destination.ErrConflict naming that version. That
// report comes after the fact: our value was written and may have replaced
// the other writer's, which stays in the version history; the engine reads
// the key again next round. Two writers racing within one second may
// therefore both be told of a conflict, and neither wins. Of two
// overlapping writes at least one is reported as a conflict: when the
// other writer's version lands after our check, ours is reported as a
// success and theirs, which replaced it, as the conflict. The changes of
// one Destination to one name are serialized (names compared without
// regard to case), so that its concurrent callers always see each other's
// versions: the window is between processes, or Destinations, writing one
// secret. A delete reads the version first and compares the
// version that the delete removed with Expect: when another writer wrote
// in between, the secret is recovered at once (so its write stands) and
// the change fails with ErrConflict.
//
// # Deletion
//
// A delete is Key Vault's soft delete: the secret (all its versions, with
// their tags) stays recoverable for the vault's retention period (7 to 90
// days) and its name cannot be reused meanwhile. When a sync creates a name
// that it soft-deleted itself (the marker matches), it recovers the secret,
// waits until it can be read (Key Vault recovers asynchronously; the wait
// polls every Options.PollInterval, for at most Options.WaitTimeout), and
// writes a new version over it. With Options.Purge (registry
// AzureKeyVault.Purge), a delete waits until the soft delete completes and
// purges the secret, so nothing can be recovered; a later create of the
// name waits while the purge completes. A secret of ours found deleted but
// not purged (a crash in between) is purged by the next delete of its key.
// A vault with purge protection refuses purges: the secret is then deleted
// but not purged, and the change reports it.
//
// # Requests
//
// List lists the vault (one request per 25 secrets) and reads each owned
// secret (Options.Concurrency at a time). A create is three requests (read,
// write, versions); an update four (versions, read, write, versions; one
// more per 25 versions of the secret in each listing of versions); a delete
// two (read, delete), and with Purge two more (deleted-state check, purge)
// plus one per poll. Measured through a sync.Syncer over 20 keys: 3.1
// requests per key to create them, 5.05 to update them (the round's List
// included), 1.05 for an idle round; the first request of a Destination
// also costs the challenge and Entra's discovery and token requests. The
// SDK retries 408, 429, 500, 502, 503 and 504 answers (3 times by default,
// with exponential backoff honouring Retry-After; Options.Retry).
//
// # Errors
//
// An error that means the vault as a whole cannot serve matches
// destination.ErrUnavailable: 429 or 5xx after the SDK's retries, 401, a
// credential Microsoft Entra refuses (azidentity.AuthenticationFailedError),
// and no answer at all (connection, TLS, timeouts). Apply then stops and
// gives the remaining changes that error. Other errors (403, 404, 409, 400)
// are per change. A cancelled context is returned as is. Errors never hold
// values or credentials; Options prints its ClientSecret as "*****".
//
// # Testing
//
// Package azurekvtest is a local Key Vault and Entra on loopback HTTPS that
// speaks the protocol as the SDK sends it; give its HTTPClient to
// Options.HTTPClient (or DriverOptions.HTTPClient) and use its VaultURL.
package azurekv
