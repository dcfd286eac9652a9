// Package connection connects to a HashiCorp Vault server the way the
// products secretsync replaces do: with AppRole (role_id and secret_id
// exchanged for a token when one is needed) or, for development and for
// users who manage tokens themselves, with a token.
//
// # Tokens
//
// A [Conn] logs in when it first needs a token, renews the token while it is
// renewable (api.LifetimeWatcher), logs in again when it expires or is
// revoked, and revokes it on Close. A secret_id read from a file or an
// environment variable is read again at each login, so a rotated secret_id
// is picked up; a response-wrapped secret_id is unwrapped at login.
//
// When a request gets 403, [Conn.Do] asks Vault whether the token it sent
// still works (auth/token/lookup-self, in Vault's default policy). If it
// does, the policy refused: [ErrPermissionDenied]. If not, the token was
// revoked or expired: the connection logs in again and the request runs once
// more, never in a loop. Requests in flight together share that check and
// that login: one revoked token costs one login, however many requests it
// failed. Each token has a client of its own, so the connection always knows
// which token a request used, and a request refused with a token already
// replaced just runs again with the new one. A token given by the user
// (Config.Token) is read again from its Credential when it dies; if that
// yields the same token, requests fail with [ErrTokenInvalid] without being
// sent.
//
// # Sharing
//
// A Conn is meant to be shared by every sync that talks to one Vault with
// one identity. It keeps at most 64 TCP connections to the server; further
// requests in flight wait for one of them rather than open their own, so
// that a burst from thousands of syncs neither opens a socket per request
// nor runs the host out of ports.
//
// # No implicit environment
//
// The api.Client is built explicitly from [Config]: no VAULT_* environment
// variable sets the address, token, namespace, TLS or headers. (An
// environment variable is read only when a Credential names it.) A program
// that wants the Vault CLI's conventions asks for them: [ConfigFromEnv]
// builds a Config from VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT and the other
// standard variables, through the getenv function it is given
// (os.Getenv, or a map's lookup).
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
// [ErrInvalidCredentials], [ErrTokenInvalid], [ErrPermissionDenied],
// [ErrSealed], [ErrRateLimited]. Use errors.Is and errors.As. A permission
// error says which capabilities the token has on the path, when
// sys/capabilities-self tells it. Context errors are returned as they are
// only when the caller's context has ended; the connection's own Timeout is
// [ErrUnreachable]. Requests answered with 429 or 5xx are retried with
// exponential backoff that honours Retry-After (see Config.MaxRetries),
// within the caller's context.
//
// [ErrUnreachable], [ErrSealed] and [ErrRateLimited] mean that the server as
// a whole cannot serve now: callers do better to stop and retry later than to
// go on request by request.
//
// # Audit
//
// New emits HCV_CONNECTION_CREATED to the configured auditor.
package connection
