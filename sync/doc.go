// Package sync is the secretsync engine: it keeps the managed keys of a
// source and a destination in step, one round at a time, without ever losing
// an update.
//
// The package shares its name with the standard library's sync; import the
// standard one under another name where both are needed:
//
//	import (
//		gosync "sync"
//
//		"github.com/secretsync/secretsync/sync"
//	)
//
// # Rounds
//
// A [Syncer] is built from a [Config]. Each [Syncer.Run] lists both sides,
// maps source keys to destination keys through the key schema, classifies
// every managed key against the baseline kept in the [state.Store] (see
// package conflict), plans the writes that the [Mode] allows, checks the plan
// against the mass-deletion guard, applies it with check-and-set, audits each
// change, and records the new baseline and the operation's status. Writes
// carry the version read, so a key changed by someone else during the round
// is never overwritten: it is reported as [Retry] and read again next round.
// When every write a round tried was refused that way, nothing was written,
// and the round reads both sides again and plans anew, up to 3 times, before
// it leaves the keys to the next round. This matters for a destination
// written in one check-and-set, such as a Vault secret in the SecretPath
// layout, whose write fails whenever any field of the secret changed, even
// one the sync does not manage. A key changed on both sides since the
// baseline is still flagged by the new plan, never overwritten. (Resolve
// does not plan anew: its resolution was chosen for what it read.)
//
// A round with nothing to do writes nothing to either side and emits no
// audit event.
//
// # Store writes
//
// A round saves the sync's state in the [state.Store] at most twice: before
// it writes, its intents (see Faults), with a "running" status record; at
// its end, its outcome. A round that writes nothing saves once if it has
// something new to record (a baseline, a flagged conflict, a status other
// than the stored one), and not at all otherwise, so an idle round makes no
// store write: with a store kept in Vault KV (vaultkv.Store), a sync
// reconciled every minute adds no KV version while nothing changes. (A round
// that confirms writes of a round cut short saves these baselines with its
// intents, so it may save twice without writing.)
//
// [Syncer.Status] still shows the latest round, with its time and run id: the
// Syncer keeps the record of a round that saved nothing in memory, and shows
// it while the store holds the state that round found. Other processes that
// read the store see the last saved record; to keep it fresh, a round that
// changed nothing saves its record anyway when the stored one is an hour old
// (24 saves a day for a sync idle all day). A round announced by a side's
// notification or by Trigger is shown as pending by Status from memory, and
// adds no store write of its own either.
//
// # Conflicts
//
// A key changed on both sides since the last round is a conflict. With the
// default policy it is flagged: neither side is written, it is reported with
// action [Conflict], it appears in [Syncer.Status], and [Syncer.Resolve]
// settles it deliberately. In Push and Pull, a change on the side the mode
// overwrites (drift) is handled the same way instead of being overwritten.
//
// # Reacting to conflicts
//
// Config.OnConflict is called once for each conflict as a round flags it,
// so that a program can page someone or open a ticket without polling
// Status. It is called for conflicts newly flagged and recorded, not for
// those still flagged from earlier rounds (a conflict whose class or
// sides changed counts as new); a key that is resolved and conflicts
// again is notified again. A round whose state could not be saved
// notifies nothing: the next round flags its conflicts anew. Plan never
// notifies.
//
// The value passed is what Status shows (key, destination key, class, run
// and time), never a secret value. OnConflict runs on the goroutine of
// the operation that flagged the conflict (Run's caller, or Watch's),
// after the round has ended and its locks are released, once per conflict
// in order of key, with the operation's context (which may have ended, if
// the round was cut short). It may call Status and Resolve; the operation
// returns, and Watch's next round starts, only when it returns, so hand
// long work to another goroutine. Calls for one Syncer never overlap
// unless operations run on several goroutines at once.
//
// # First round
//
// Without a baseline, the first round follows Config.InitialSync: overwrite
// the destination, or import the destination's keys first, preferring the
// source or the destination where both hold a key.
//
// # Faults
//
// A process may die at any instant, a side may stop answering, time out,
// seal or rate-limit in the middle of a round. Before it writes, a round
// saves its intents in the store; the next round takes a write it finds
// applied for the sync's own (it becomes the baseline, and the write is
// audited then if its own round could not), so a crash never turns into a
// conflict. A write whose outcome is unknown (a timeout, a lost answer)
// stays recognized as the sync's own until its key is settled. A side that
// reports destination.ErrUnavailable stops the round at once with that one
// error. Events are delivered at least once: a write audited by a round
// that died before recording it is audited again by the round that
// confirms it.
//
// The status record of each operation says what happened: "succeeded"
// only when every planned write was applied; "failed" when the round or
// any key failed (a timeout of a side's own client included); "conflicts"
// when conflicts are flagged; "pending" when keys changed during the round
// and are read again next round. Its message is one line ([OneLine]).
//
// # Stores without check-and-set, and stores that cannot be read back
//
// A destination whose store cannot make a write conditional
// (destination.Capabilities.NoCheckAndSet: KV v1, AWS, Azure, GCP, Vercel)
// checks the version just before each write; a write by someone else in
// the short window between that check and the write can be overwritten,
// which each such destination documents. A write-only destination
// (Capabilities.WriteOnly: GitHub Actions secrets, Vercel sensitive
// variables) lists version markers instead of values. The sync keeps, per
// key, the marker listed after its own write (it lists the destination
// once more after a round's puts); the same marker later means the value
// is still the sync's, another one a change made at the destination,
// handled as drift. A write-only destination can only be pushed to: Pull,
// Bidirectional, the import behaviours and Import are refused with
// [ErrWriteOnly], as is resolving a conflict by keeping its value.
//
// Config.KeyNamer names destination keys with a function instead of a key
// schema, for stores whose names follow their own rules (package
// registry renders Vault-style name templates with it). The
// sync then manages exactly the names it renders from the source's keys
// and from its baseline. A name belongs to one key or to none: a key gone
// from the source whose name a source key now has (a renamed key) leaves
// it to that key, and otherwise two keys given one name both fail, those
// of the source as those gone from it (after a change of the namer), so
// that neither is written or deleted over the other and the entry at the
// name is left alone, unmanaged.
//
// # Removing
//
// [Syncer.Remove] (an unsync) deletes from the destination the keys the
// sync wrote there. It does not need the source: when the source cannot be
// listed (a Vault mount disabled, a token that may no longer read it), it
// goes on from the saved state, whose baseline and pending writes record
// what the sync wrote (for a KeyNamer, the names rendered from those keys;
// for a write-only destination, with its markers). Its deletions are
// check-and-set, audited and recorded like a round's; the mass-deletion
// guard does not apply to it.
//
// # Safety
//
// A plan that deletes more than Config.MaxDeleteFraction (default half) of a
// side's managed keys, or that empties a side because the other is empty, is
// refused with [ErrMassDeletion] unless [Force] is given. [Syncer.Plan]
// shows every change without applying it. A key that could make a write
// land outside its place ("..", "/x", "a//b"; see destination.CheckKey) is
// refused with a typed error while the rest of the round goes on. Values
// never appear in reports, errors, logs, audit events or the store.
package sync
