// Package vaultkv uses a HashiCorp Vault KV mount, version 2 or version 1,
// as a sync source and destination. It implements destination.Destination,
// so it serves on either side of a sync.Syncer, and it passes
// destination/destinationtest against a real Vault server in both layouts
// and on both versions. New reads the mount's version; everything below
// is about KV v2 unless it says otherwise, and "KV version 1" says what
// differs there.
//
// # Layouts
//
// SecretPath keeps every key of a sync as a field of one secret at
// Mount/Path: one check-and-set write per round, and fields the sync does
// not manage are preserved. The secret is created when absent. A write by
// someone else to any field of the secret, between the round's read and its
// write, makes that write fail whole with destination.ErrConflict; the sync
// then reads the secret again and plans anew within the round, a few times
// (see "Rounds" in package sync).
//
// SecretKey keeps one secret per key under Mount/Path/ (nested paths are
// listed recursively), the value in Options.Field (default "value"), and an
// ownership marker in custom_metadata (OwnerKey = Options.Owner). A secret
// without the marker is never overwritten or deleted unless
// Options.AdoptUnowned is set (destination.ErrNotOwned otherwise). The
// marker is added and removed with a JSON merge patch of the metadata, so
// other custom_metadata fields (an operator's team=payments) are kept;
// only for a secret that has no metadata yet is the metadata created, with
// the marker alone (a secret created by someone else in the round trip
// between Vault's "no metadata" answer and that create would lose its
// custom metadata; the sync's write then fails its check-and-set). Deletion
// soft-deletes the current version; Options.Destroy destroys it and
// Options.DeleteMetadata removes the secret's metadata and every version.
//
// On a KV v1 mount both layouts work, as a store without check-and-set
// (destination.Capabilities.NoCheckAndSet). What they can do: create,
// update and delete keys; keep the fields and secrets the sync does not
// manage; catch a change made out of band since List, by reading each key
// again just before writing it; keep the ownership marker (SecretKey) as
// a field of each secret, beside the value; be polled; serve as a source.
// What they cannot: make a write conditional, so a write by another client
// in the round trip between that read and the write is lost; keep
// versions (a version is a salted fingerprint of the value) or undelete
// (every delete is permanent); hold the state Store; hold a key with ".."
// in it (SecretKey). See "KV version 1" for each.
//
// # KV version 1
//
// A KV v1 mount keeps one copy of each secret: reads are GET
// Mount/Path[/key], writes POST the whole secret there, deletes DELETE it
// for good, lists LIST it; there are no data/ or metadata/ paths. The KV
// reports destination.Capabilities.NoCheckAndSet, and does this instead:
//
//   - Version: a secret has none, so List gives each key a fingerprint of
//     its value as its version: the first 96 bits of SHA-256 over a salt
//     and the value, in hex. The salt is 32 random bytes drawn by New and
//     kept in memory only, so that a version (which appears in logs and
//     errors) never lets anyone test a guess of the value. A version thus
//     means something only to the KV that listed it (the engine passes
//     back what the same KV listed, and never stores versions), and a value
//     changed and changed back is not seen as a change.
//   - Check before write: every put and delete reads the key again (the
//     whole secret, in the SecretPath layout) just before writing, and
//     reports destination.ErrConflict when its fingerprint is not Expect
//     ("" means it must not exist), so a change made out of band after
//     List is never overwritten. Writes of one KV are serialized per key
//     (per secret in the SecretPath layout), so its own concurrent callers
//     never overwrite each other either.
//   - The window that remains: a write by another client that lands
//     between that read and the write (one round trip, a millisecond or
//     so on a local network) is overwritten, or deleted, without notice;
//     KV v1 keeps no history to find it afterwards. In the SecretPath
//     layout that includes another client's change to a field this sync
//     does not manage, since every write replaces the whole secret.
//     Where that matters, use KV v2.
//   - Ownership (SecretKey): KV v1 has no custom_metadata, so the marker
//     is a field of the secret's data, Options.OwnerField (default
//     "secretsync-owner") = Options.Owner, written in the same request as
//     the value (no crash can leave a secret of ours without it). Readers
//     of Options.Field never see it; List ignores it; readers of the whole
//     secret (an application that loads every field as an environment
//     variable) do see it. A secret without the marker is never
//     overwritten or deleted unless Options.AdoptUnowned is set
//     (destination.ErrNotOwned), as on KV v2. Ownership never rests on
//     the sync's state alone: a secret that an operator wrote at a key the
//     sync also manages is refused, not taken.
//   - Deletion is permanent (Destroy and DeleteMetadata change nothing):
//     there is no version to undelete. KV v1 refuses a secret without
//     fields, so in the SecretPath layout removing the last field deletes
//     the secret.
//   - Fields of a secret other than the ones the sync writes are kept, as
//     on KV v2 (but see the window above).
//   - Store (the state store and its locks) needs check-and-set and
//     refuses a KV v1 mount with a *MountError matching ErrNotKVv2: keep
//     the state in a KV v2 mount, or in a file (state.File).
//
// Requests on KV v1: SecretPath: List is one read; Apply is one read and
// one write (a delete when the last field goes), or the read alone when
// nothing changes; a round with changes thus costs three requests, an
// idle round one. SecretKey: List is one LIST per folder and one read per
// secret; Apply's create, update and delete are each one read and one
// write (with the round's List: 2 requests per created key, 3 per updated
// or deleted key, 1 per key in an idle round, which writes nothing).
//
// # Check-and-set
//
// On KV v2, every write carries the version that was read (cas=0 to
// create, or the current version of a deleted secret), so mounts with
// cas_required work and a concurrent write is never overwritten: a
// mismatch is reported as destination.ErrConflict and the engine reads the
// key again next round. Deletion checks the version right before deleting
// exactly that version, which never touches a newer one. KV v1 has no
// check-and-set: see "KV version 1".
//
// # Values
//
// Values are opaque strings. A non-string value read from Vault (a number,
// a boolean, an object) is seen as its JSON text, and is left as it is
// unless the sync changes it. A soft-deleted or destroyed latest version
// reads as absent.
//
// Vault keeps values as JSON strings, which hold valid UTF-8 text only. A
// put whose value is not valid UTF-8 is refused for that change alone with
// a destination.KeyError wrapping destination.ErrInvalidValue (the other
// changes of the call are still written, in the SecretPath layout too);
// such a value is never stored with replacement characters. NUL and other
// control characters are valid UTF-8 and are kept exactly.
//
// # Keys
//
// A key never makes a request leave Mount/Path. In the SecretKey layout a
// key is part of a path, so it must pass destination.CheckKey (no empty,
// "." or ".." segment, no leading '/') and be valid UTF-8 made of
// printable characters (Vault refuses others in a path); otherwise its
// change is refused with a destination.KeyError wrapping
// destination.ErrInvalidKey, and the rest of the call goes on. In the
// SecretPath layout a key is a field of the secret and may be any
// non-empty valid UTF-8 text. On KV v1, whose secrets are stored under
// their own paths, Vault refuses a path with ".." anywhere in it ("a..b"),
// so such a key is refused too (SecretKey layout), and such a Path by New.
// Options.Mount and Options.Path (and
// StoreOptions', and the sync names given to Store and Lock) are checked
// the same way: New and NewStore refuse them with ErrInvalidOptions.
//
// # Requests
//
// On KV v2: SecretPath: List is one read; Apply is one write (plus one
// read when no List came first). SecretKey: List is one LIST per folder and one read per
// secret; a create is a metadata patch that adds the marker (plus a
// metadata create when the secret has no metadata yet), written first so
// that a failure in between never leaves an unmarked secret of ours, and a
// write; an update is one write; a delete is a read and a delete. Answers
// 429 and 5xx are retried by the connection with backoff that honours
// Retry-After.
//
// # Errors and partial results
//
// Every request goes through one wrapper: an error that says Vault as a
// whole cannot serve (connection.ErrUnreachable, connection.ErrSealed, 429
// or 502/503/504 after the connection's retries, or no answer within the
// connection's own timeout while the caller's context is live) also
// matches destination.ErrUnavailable, with the original error kept in the
// chain. List stops at the first error and cancels the reads in flight.
// Apply in the SecretKey layout stops its batch at the first such error,
// or at a cancelled context: each change applied before keeps its nil
// result, the change in flight gets its error, and the changes not
// attempted get the stopping error; the call error is returned too. In the
// SecretPath layout one write carries the call's changes: when it fails,
// each change it carried gets the error, which says "the write may have
// been applied" unless Vault refused it outright (a 4xx other than 429).
//
// # Mount accessor
//
// KV.MountAccessor returns the mount's accessor (kv_1a2b3c4d), read by New
// with the version; package registry's name templates use it as
// {{ .MountAccessor }}.
//
// # Following changes
//
// Vault Community Edition sends no change events, so KV implements
// destination.Notifier by polling (Options.PollInterval, default 5 s): one
// idle poll costs one metadata read in the SecretPath layout, and one LIST
// per folder plus one metadata read per secret in the SecretKey layout
// (1,001 requests for 1,000 keys in one folder). A poll that sees a new
// version, a deletion or a destruction announces a change, and a watching
// sync.Syncer runs a round. On KV v1, which has no metadata, a poll costs
// as many reads of the secrets themselves and compares salted
// fingerprints of their data: any change of a field announces a change.
//
// # Shared state and locks
//
// Store is a state.Store kept in a KV v2 mount (never KV v1), so that
// replicas of a daemon share baselines and status with no other
// infrastructure; every save is check-and-set on the state secret's
// version, and makes one KV version of it. A sync saves its state only
// when it has something to record: a round that writes makes two versions,
// an idle round none, and an idle sync one an hour (see "Store writes" in
// package sync). Store.NewLock gives a
// state.Lock: a lease per sync, renewed every TTL/3 by its holder, given up
// by a holder that could not renew it for 3/4 of the TTL, and taken over by
// another replica that saw it unchanged for a whole TTL (by its own clock,
// so clocks are never compared). Policy gives the capabilities it needs.
//
// The replicas divide the syncs among themselves: a Lock that waits in
// Acquire keeps a membership lease at <Path>/members/<holder>, and
// rendezvous hashing of each sync's name over the live members names the
// replica that takes its lock; the others stand by, reading the lock once
// a TTL, and take it only when it has stayed unchanged for three TTLs. A
// replica that joins gets its share as the others hand their locks over
// between rounds (state.Spreader, which sync.Syncer.Watch honours); the
// share of one that dies moves to the others about two TTLs later, and one
// that stops (or calls Lock.Close) hands its share over within about a
// third of a TTL. See Lock.
//
// # Vault policy
//
// Policy returns the exact policy a configuration needs (see PolicySpec).
// For a bidirectional sync of secret/app/* in the SecretKey layout, watched
// for changes (Poll), with its state and locks in a Store on the same
// mount, it returns:
//
//	path "secret/data/app/*" {
//	  capabilities = ["read", "update"]
//	}
//
//	path "secret/data/secretsync/fingerprint-key" {
//	  capabilities = ["create", "read"]
//	}
//
//	path "secret/data/secretsync/lock/*" {
//	  capabilities = ["create", "read", "update"]
//	}
//
//	path "secret/data/secretsync/members/*" {
//	  capabilities = ["create", "read", "update"]
//	}
//
//	path "secret/data/secretsync/state/*" {
//	  capabilities = ["create", "read", "update"]
//	}
//
//	path "secret/delete/app/*" {
//	  capabilities = ["update"]
//	}
//
//	path "secret/metadata/app/*" {
//	  capabilities = ["create", "read", "patch", "list"]
//	}
//
//	path "secret/metadata/secretsync/members/*" {
//	  capabilities = ["delete", "list"]
//	}
//
// A read-only source needs only read (and list for SecretKey), plus read
// on the metadata when polled. A KV v1 side needs the same capabilities on
// the secrets' own paths, with delete for deletion (KVAccess.Version). Every request names the capability it
// needs, so a permission error says which capability is missing on which
// path. The policy needs nothing from Vault's default policy, which tokens
// hold unless made with no_default_policy; the connection uses its
// auth/token/lookup-self to tell a revoked token from a missing
// capability.
package vaultkv
