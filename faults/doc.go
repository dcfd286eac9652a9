// Package faults is secretsync's fault matrix: tests that run a sync
// against a real Vault server while something goes wrong in the middle of a
// round, and check what the library promises whatever happens.
//
// The package has no API; it is its tests. Each test pushes a few hundred
// keys from a source to Vault KV v2 (in both layouts where the layout
// matters), with a file state store and an audit recorder, and injects one
// fault at a fixed point of a round: before the k-th write, with no other
// write in flight, so that every run splits the round at the same place.
// For every fault the tests check that
//
//   - nothing is lost and nothing is deleted that should not be: Vault
//     only ever holds its old value or the source's value for a key;
//   - no conflict is flagged that is not one;
//   - Run's error and the status record say what happened: a round with
//     failed keys never returns nil and is never recorded as "succeeded";
//   - every write that reached Vault has its audit event and its line in
//     the report (a write whose outcome is unknown has its failure event);
//   - once the fault is lifted, the next round converges, and the round
//     after it writes nothing and reports every key unchanged, with Vault
//     holding exactly the source's values.
//
// The matrix, with the outcome each test proves, is rendered as a table in
// docs/faults.md from the rows declared in matrix_test.go; a test fails
// when the two differ (go test ./faults -run TestMatrixDoc -update rewrites
// the table).
//
// The tests need Docker and the Vault image of scripts/vault-image: the
// faults that restart or seal Vault start a server of their own
// (vaulttest.NewDurable, raft storage, behind a loopback proxy); the others
// use vaulttest.Get's dev server, behind a vaulttest.Proxy where the fault
// is in the network. Run them with
//
//	./scripts/test ./faults/...
package faults
