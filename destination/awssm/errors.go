package awssm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secretsync/secretsync/destination"
)

// fail returns the error of a request: ctx's error when ctx ended, else
// err, also matching destination.ErrUnavailable when it says that the
// service as a whole cannot serve (see unavailable).
func (d *Destination) fail(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if unavailable(err) {
		return fmt.Errorf("%w: awssm: %s: %w", destination.ErrUnavailable, what, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch {
		case api.ErrorCode() == accessDenied:
			return fmt.Errorf("awssm: %s: %s: %w", what, deniedHint, err)
		case refusedCodes[api.ErrorCode()]:
			return fmt.Errorf("awssm: %s: %w: %w", what, errRefused, err)
		}
	}
	return fmt.Errorf("awssm: %s: %w", what, err)
}

// accessDenied is the error code of a request that IAM does not allow;
// the SDK has no type for it.
const accessDenied = "AccessDeniedException"

const deniedHint = "not allowed by IAM (the package documentation lists the actions needed)"

// Error codes that refuse the credentials themselves: every request fails
// alike until they are fixed.
var refusedCodes = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidClientTokenId":                true,
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"MissingAuthenticationTokenException": true,
	"ExpiredTokenException":               true,
}

// errRefused marks the error of a request whose credentials AWS refused;
// it stops Apply.
var errRefused = errors.New("AWS refused the credentials")

// Error codes that say the service cannot serve now; the SDK has already
// retried them.
var unavailableCodes = map[string]bool{
	"ThrottlingException":         true,
	"Throttling":                  true,
	"TooManyRequestsException":    true,
	"RequestLimitExceeded":        true,
	"InternalServiceError":        true,
	"InternalFailure":             true,
	"ServiceUnavailable":          true,
	"ServiceUnavailableException": true,
	"RequestTimeout":              true,
	"RequestTimeoutException":     true,
}

// unavailable reports whether err, from the SDK after its retries, says
// that AWS Secrets Manager as a whole cannot serve: throttling, a 5xx or
// 429 answer, a request that could not be sent or got no answer in time.
// Errors about one secret or the caller's rights (not found, access
// denied, a quota such as the number of versions) are not.
func unavailable(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && unavailableCodes[api.ErrorCode()] {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		code := status.HTTPStatusCode()
		if code >= 500 || code == http.StatusTooManyRequests {
			return true
		}
	}
	var send *smithyhttp.RequestSendError
	var nerr net.Error
	return errors.As(err, &send) || errors.As(err, &nerr) || errors.Is(err, context.DeadlineExceeded)
}
