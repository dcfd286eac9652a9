package ghactions

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-github/v84/github"

	"github.com/secretsync/secretsync/destination"
)

// answer returns the answer of GitHub's that err reports and its
// message, or nil.
func answer(err error) (*http.Response, string) {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Response, er.Message
	}
	return nil, ""
}

// status returns the HTTP status of an error that go-github returned for
// an answer of GitHub's, or 0.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) && rl.Response != nil {
		return rl.Response.StatusCode
	}
	var al *github.AbuseRateLimitError
	if errors.As(err, &al) && al.Response != nil {
		return al.Response.StatusCode
	}
	return 0
}

// refused reports an error for which the token was refused: 401 (bad or
// expired credentials), a 403 that is not a rate limit (no permission,
// or GitHub's lockout after repeated bad credentials), or a 404 whose
// headers say that the classic token lacks the scope the endpoint
// accepts. Every other request would be refused too, so Apply stops.
func refused(err error) bool {
	if unavailable(err) {
		return false
	}
	switch status(err) {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusNotFound:
		return !gone(err)
	}
	return false
}

// gone reports a 404 that says the thing asked for does not exist: not
// one whose headers say that the classic token lacks the scope (GitHub
// answers 404 rather than confirm that a private repository exists).
func gone(err error) bool {
	a, _ := answer(err)
	return status(err) == http.StatusNotFound && a != nil && scopeHint(a.Header) == ""
}

// accessHint returns what GitHub's refusal (its status, message and
// headers) says the token lacks, or "":
//
//   - GitHub refuses a fine-grained token or a GitHub App that lacks a
//     permission with 403 "Resource not accessible by personal access
//     token" (or "by integration") and X-Accepted-GitHub-Permissions,
//     the permissions the endpoint needs (comma-separated, alternative
//     sets separated by ';'), a header it sends with every answer to such
//     tokens;
//   - every answer to a classic token carries X-Accepted-OAuth-Scopes,
//     the scopes the endpoint accepts, and X-OAuth-Scopes, the token's
//     own: a 403 or 404 whose token has none of the accepted is for want
//     of the scope.
//
// Neither header holds the token.
func accessHint(code int, message string, h http.Header) string {
	if code == http.StatusForbidden && strings.HasPrefix(message, "Resource not accessible by") {
		if p := strings.TrimSpace(h.Get("X-Accepted-GitHub-Permissions")); p != "" {
			return "the token lacks a permission: GitHub requires " + describePermissions(p) +
				" (X-Accepted-GitHub-Permissions: " + p + ")"
		}
	}
	if code == http.StatusForbidden || code == http.StatusNotFound {
		return scopeHint(h)
	}
	return ""
}

// scopeHint is the hint of accessHint for a classic token.
func scopeHint(h http.Header) string {
	accepted := splitList(h.Get("X-Accepted-OAuth-Scopes"), ",")
	has, sent := h[http.CanonicalHeaderKey("X-OAuth-Scopes")]
	if len(accepted) == 0 || !sent {
		return ""
	}
	own := splitList(strings.Join(has, ","), ",")
	for _, a := range accepted {
		if slices.Contains(own, a) {
			return ""
		}
	}
	have := "none"
	if len(own) > 0 {
		have = strings.Join(own, ", ")
	}
	return "the token lacks a scope: GitHub accepts the scope " + strings.Join(accepted, " or ") +
		", and the token has " + have + " (X-Accepted-OAuth-Scopes)"
}

// permissionTitles are the names GitHub's settings give the fine-grained
// permissions that the header names.
var permissionTitles = map[string]string{
	"secrets":              `repository permission "Secrets`,
	"environments":         `repository permission "Environments`,
	"metadata":             `repository permission "Metadata`,
	"organization_secrets": `organization permission "Secrets`,
}

// describePermissions renders an X-Accepted-GitHub-Permissions value as
// GitHub's settings name the permissions: "secrets=write,metadata=read"
// becomes `the repository permission "Secrets: Read and write" and the
// repository permission "Metadata: Read-only"`; alternatives are joined
// with ", or ".
func describePermissions(header string) string {
	var sets []string
	for _, set := range splitList(header, ";") {
		var items []string
		for _, item := range splitList(set, ",") {
			name, access, _ := strings.Cut(item, "=")
			title, ok := permissionTitles[name]
			if !ok {
				items = append(items, item)
				continue
			}
			switch access {
			case "read":
				access = "Read-only"
			case "write":
				access = "Read and write"
			case "admin":
				access = "Admin"
			}
			items = append(items, "the "+title+": "+access+`"`)
		}
		sets = append(sets, strings.Join(items, " and "))
	}
	return strings.Join(sets, ", or ")
}

// splitList splits s at sep and trims the parts, dropping empty ones.
func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// unavailable reports an error that says GitHub as a whole cannot serve
// now: a rate limit (primary or secondary, which go-github reports
// without retrying), a 5xx answer, or no answer at all.
func unavailable(err error) bool {
	var (
		rl *github.RateLimitError
		al *github.AbuseRateLimitError
		ue *url.Error
		ne net.Error
	)
	switch {
	case errors.As(err, &rl), errors.As(err, &al):
		return true
	case status(err) >= 500:
		return true
	case status(err) == http.StatusTooManyRequests:
		return true
	case status(err) != 0:
		return false
	case errors.As(err, &ue), errors.As(err, &ne):
		return true
	}
	return false
}

// opError is an error of a request of the destination: what it was
// doing, and the error go-github returned. It matches
// destination.ErrUnavailable when GitHub could not serve.
type opError struct {
	dest, what  string
	unavailable bool
	hint        string // what GitHub says the token lacks (accessHint), or ""
	err         error
}

func (e *opError) Error() string {
	s := "ghactions: " + e.dest + ": " + e.what + ": " + e.err.Error()
	if e.hint != "" {
		s += "; " + e.hint
	}
	return s
}

func (e *opError) Unwrap() []error {
	if e.unavailable {
		return []error{destination.ErrUnavailable, e.err}
	}
	return []error{e.err}
}

// wrap adds what was being done to err, and destination.ErrUnavailable
// when GitHub cannot serve now. A context error of ctx passes unwrapped;
// an error wrapped already passes as it is.
func (d *Destination) wrap(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return cerr
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	oe = &opError{dest: d.String(), what: what, unavailable: unavailable(err), err: err}
	if a, msg := answer(err); a != nil && !oe.unavailable {
		oe.hint = accessHint(a.StatusCode, msg, a.Header)
	}
	return oe
}
