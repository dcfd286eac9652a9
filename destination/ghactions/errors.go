package ghactions

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"

	"github.com/google/go-github/v84/github"

	"github.com/secretsync/secretsync/destination"
)

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
// expired credentials) or a 403 that is not a rate limit (no permission,
// or GitHub's lockout after repeated bad credentials). Every other request
// would be refused too, so Apply stops.
func refused(err error) bool {
	if unavailable(err) {
		return false
	}
	s := status(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
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
	err         error
}

func (e *opError) Error() string {
	return "ghactions: " + e.dest + ": " + e.what + ": " + e.err.Error()
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
	return &opError{dest: d.String(), what: what, unavailable: unavailable(err), err: err}
}
