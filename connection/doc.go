// Package connection connects to a HashiCorp Vault server the way the
// products secretsync replaces do: with AppRole (role_id and secret_id
// exchanged for a token when one is needed) or, for development and for
// users who manage tokens themselves, with a token.
//
// # Tokens
//
// A [Conn] logs in when it first needs a token, renews the token while it is
// renewable (api.LifetimeWatcher), logs in again when it expires or is
// revoked (a 403 from a dead token leads to one new login and one retry,
// never a loop), and revokes it on Close. A secret_id read from a file or an
// environment variable is read again at each login, so a rotated secret_id
// is picked up; a response-wrapped secret_id is unwrapped at login.
//
// # No implicit environment
//
// The api.Client is built explicitly from [Config]: no VAULT_* environment
// variable sets the address, token, namespace, TLS or headers. (An
// environment variable is read only when a Credential names it.)
//
// # Redaction
//
// Printing a Config, an AppRole, a Token, a Credential or a Conn with any
// fmt verb, String or JSON shows credentials as "*****", as Vault's
// /sys/sync API does.
//
// # Errors
//
// Failures are *Error values naming the operation, the path and the
// capability needed, wrapping a sentinel: [ErrUnreachable], [ErrTLS],
// [ErrInvalidCredentials], [ErrPermissionDenied], [ErrSealed]. Use errors.Is
// and errors.As. Requests answered with 429 or 5xx are retried with
// exponential backoff that honours Retry-After, within the caller's context.
//
// # Audit
//
// New emits HCV_CONNECTION_CREATED to the configured auditor.
package connection
