// Package secretsync keeps secrets in step between a host system and
// HashiCorp Vault KV v2, and from Vault out to other secret stores.
//
// It is a library: a Go service imports it to offer "HashiCorp Vault sync"
// to its users, a team builds a sync daemon on it, and both unit-test their
// sync logic with its in-memory sides. This package holds only this
// overview; the work is done by its sub-packages:
//
//   - [github.com/secretsync/secretsync/sync]: the engine. A Syncer runs
//     push, pull or bidirectional rounds with three-way conflict detection,
//     initial-sync behaviours, key schemas, deletion control, a guard
//     against mass deletion, dry-run plans, status records and audit events.
//     Its time comes from a sync.Clock; sync/clocktest has a manual one
//     for tests.
//   - [github.com/secretsync/secretsync/conflict]: the pure three-way
//     classification and the conflict policies.
//   - [github.com/secretsync/secretsync/keyschema]: key schema templates
//     such as "APP_{{secretKey}}" or "{{environment}}/{{secretKey}}".
//   - [github.com/secretsync/secretsync/destination]: the contract every
//     side implements (list, and apply with check-and-set), with an
//     in-memory implementation and a conformance suite; destination/funcs
//     makes a side of a list and an apply function (a service's own
//     database), destination/env a source of environment variables.
//   - [github.com/secretsync/secretsync/registry]: named
//     destinations of typed configs (vault-kv, aws-sm, azure-kv, gcp-sm, gh,
//     vercel-project, or the program's own) and associations of KV v2
//     secrets with them, in the shape of Vault's /sys/sync API.
//   - [github.com/secretsync/secretsync/state]: baselines and status records
//     (in memory, or in a file written atomically).
//   - [github.com/secretsync/secretsync/audit]: audit events and auditors
//     (log/slog, JSON lines, an in-memory recorder, fan-out).
//
// # Conventions
//
// Every function that takes an options struct (a type named ...Options)
// takes it by pointer, and nil means the zero struct, as with
// [log/slog.HandlerOptions]: memory.NewWithOptions(m, nil) is
// memory.New(m). Where some fields are required (vaultkv.Options.Mount),
// nil, like any struct without them, is refused with the package's
// ErrInvalidOptions. A configuration that is the whole of what is built
// (sync.Config, connection.Config) is passed by value. Either way the
// struct is copied (not the maps or slices it refers to): changing it
// after the call changes nothing. TestOptionsByPointer keeps the rule.
//
// Secret values never appear in logs, errors, audit events or stored state:
// baselines hold HMAC-SHA256 fingerprints, never values.
package secretsync
