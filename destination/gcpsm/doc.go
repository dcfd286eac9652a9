// Package gcpsm syncs to Google Cloud Secret Manager: a
// destination.Destination of type "gcp-sm" (registry.TypeGCPSecretManager)
// on the official Go SDK, cloud.google.com/go/secretmanager/apiv1, over its
// default transport, gRPC. Each key is one secret of a project (global
// secrets, automatic replication); its value is the data of the secret's
// latest enabled version. Package gcpsmtest is a local Secret Manager for
// tests, which this package's own tests and examples use.
//
// Open a Destination with New, or register Driver with a
// registry.Registry for the type "gcp-sm". The registry names the secrets
// (granularity and name template, as in Vault's Secrets Sync; the default
// for gcp-sm is secret-path, one secret per Vault secret holding the JSON
// object of its keys) and passes each name through NormalizeKey.
//
// # Credentials
//
// Options.Credentials is the JSON key of a service account (the
// registry's GCPSecretManager.Credentials: the JSON itself, or "@" and the
// path of a file that holds it, read when the destination is opened). The
// destination obtains OAuth 2.0 access tokens for the scope
// https://www.googleapis.com/auth/cloud-platform from the key's token_uri
// (https://oauth2.googleapis.com/token for Google's keys) with the
// JWT-bearer grant of RFC 7523, caches them until they expire, and sends
// them on every RPC. Only keys of type "service_account" are accepted; the
// environment (GOOGLE_APPLICATION_CREDENTIALS, the metadata server) is
// never consulted. The project is Options.ProjectID (the registry's
// ProjectID), or else the key's project_id.
//
// # IAM permissions
//
// The service account needs, on the project (or on each secret, but
// listing needs the project), the role roles/secretmanager.admin, or a
// custom role with exactly these permissions:
//
//	secretmanager.secrets.create    CreateSecret (a new key)
//	secretmanager.secrets.get       GetSecret (ownership and etag before a write)
//	secretmanager.secrets.list      ListSecrets (List)
//	secretmanager.secrets.update    UpdateSecret (custom labels added to an owned secret)
//	secretmanager.secrets.delete    DeleteSecret (a deleted key)
//	secretmanager.versions.add      AddSecretVersion (every write)
//	secretmanager.versions.access   AccessSecretVersion (values, in List)
//	secretmanager.versions.list     ListSecretVersions (the version read before a write)
//
// roles/secretmanager.secretAccessor and secretVersionAdder are not
// enough: they lack secrets.create, secrets.list and secrets.delete. The
// package's tests run a whole life cycle with exactly this list and check
// that each permission is needed.
//
// # Names, values and labels
//
// A key is a secret ID: 1 to 255 ASCII letters, digits, '-' and '_'.
// NormalizeKey maps every other character to '_' ("vault/kv/app/prod"
// becomes "vault_kv_app_prod") and refuses, with destination.ErrInvalidKey,
// a name that is empty or longer than 255 characters; Apply refuses any
// key that is not a valid ID with ErrInvalidKey and never alters one.
//
// A value is stored as the version's payload, byte for byte (any bytes,
// not only UTF-8), from 1 byte to 64 KiB (65536 bytes). Secret Manager
// refuses an empty payload and a larger one, so Apply refuses both with
// destination.ErrInvalidValue. Each payload is sent with its CRC32C
// (data_crc32c), which the service checks, and the CRC32C that comes back
// with every payload read is checked too.
//
// Options.Labels (the registry's CustomTags) are set on every secret the
// destination creates, and added (with the secret's etag) to an owned
// secret that lacks them; labels others set are kept. Secret Manager's
// rules apply and are checked by New: at most 64 labels per secret (62
// custom ones beside the two markers); keys of 1 to 63 lower-case letters,
// digits, '_' and '-' starting with a letter; values of 0 to 63 of the
// same characters. "managed-by" and "secretsync-owner" are reserved.
//
// # Ownership
//
// Every secret the destination creates carries the labels
// managed-by=secretsync and secretsync-owner=OwnerLabel(Options.Owner)
// (the registry's association; the label is absent for an empty Owner).
// List asks ListSecrets for exactly those secrets (the filter
// "labels.managed-by=secretsync AND labels.secretsync-owner=...") and
// checks the labels again; Apply reads a secret's labels before writing
// or deleting it and refuses one without this owner's marker with
// destination.ErrNotOwned, a create over it included. Secrets of other
// owners are neither listed nor touched.
//
// # Versions and the race that remains
//
// A key's Version is the number of its latest enabled version and the
// creation time of the secret ("3@2026-01-02T03:04:05.123456Z"), so that a
// secret deleted and created again never matches a version read before.
// A secret whose latest version is disabled or destroyed lists its latest
// enabled version; one with no enabled version is not listed.
//
// Secret Manager cannot make AddSecretVersion conditional, so the
// destination reports destination.Capabilities.NoCheckAndSet and narrows
// the race: before a write it reads the secret (GetSecret) and its newest
// version (ListSecretVersions, one version), and refuses with
// destination.ErrConflict when the latest enabled version is not Expect
// (a create finding the secret with an enabled version included; a create
// is CreateSecret, which fails with ALREADY_EXISTS when the secret
// exists). After AddSecretVersion it checks that the version just below
// its own is the newest one it read: version numbers are sequential per
// secret, so when its number is the read one plus one this needs no
// request; otherwise it lists the versions and reports ErrConflict when
// another writer's version came in between. Its own version is then
// written and is the latest: the conflict says that a change it did not
// read was overwritten, and the engine reads again next round. Writes of
// one key through one Destination are serialized, so writers sharing it
// never race. What remains is the interval between the read and the
// write, a few milliseconds, for writers in other processes: their
// change is overwritten and, when they landed first, reported to them as
// successful and to this writer as a conflict.
//
// # Deletion
//
// Deleting a key deletes its secret with DeleteSecret, sent with the etag
// read just before (a secret changed in between, labels included, makes
// it fail with FAILED_PRECONDITION, reported as ErrConflict). Deletion in
// Secret Manager is immediate and permanent: the secret and all its
// versions are gone, with no recovery window and no soft delete; a secret
// of the same ID can be created at once. A version added between the read
// and the delete is deleted with the secret (the etag covers the secret,
// not its versions). Use registry.AssociationOptions.DisableDeletion (or
// sync's DisableDeletion) to keep secrets when keys disappear.
//
// # Errors
//
// Apply returns one result per change: nil, or a *destination.KeyError
// wrapping ErrConflict, ErrNotOwned, ErrInvalidKey, ErrInvalidValue or the
// RPC's error. UNAVAILABLE, RESOURCE_EXHAUSTED (quota), DEADLINE_EXCEEDED
// (the SDK's 60-second timeout), INTERNAL and UNAUTHENTICATED (refused
// credentials, or a token endpoint that cannot be reached) match
// destination.ErrUnavailable; Apply stops at the first, and the changes
// it did not attempt fail with it. The SDK retries only
// AccessSecretVersion (on UNAVAILABLE and RESOURCE_EXHAUSTED, with
// backoff from 2 s, within the timeout); writes are not retried, so the
// engine's next round does. PERMISSION_DENIED is the key's own error.
// A done context's error is returned as it is. Errors never hold values.
//
// # Requests
//
// Per round of a sync: List costs one ListSecrets per page (the service
// decides the page size, up to 25000; Options.PageSize sets it) and one
// AccessSecretVersion per listed key, read eight at a time
// (Options.Concurrency). Measured through a registry association (secret-key
// granularity, 10 keys), requests per key including that List: 2.1 to
// create (CreateSecret, AddSecretVersion), 4.1 to update (AccessSecretVersion,
// GetSecret, ListSecretVersions, AddSecretVersion), 1.1 for an idle round
// (nothing is written), and 4.1 to delete (AccessSecretVersion,
// GetSecret, ListSecretVersions, DeleteSecret). A token request is added
// about once an hour.
//
// # Concurrency
//
// A Destination is safe for concurrent use; Close it when done, which
// closes the SDK client's connections.
package gcpsm
