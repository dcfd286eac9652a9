package azurekv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/secretsync/secretsync/destination"
)

// isNotFound reports Key Vault's 404 (SecretNotFound).
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// innerCode returns the inner error code of a Key Vault 409 Conflict
// (ObjectIsDeletedButRecoverable, ObjectIsBeingDeleted,
// ObjectIsBeingRecovered), or "".
func innerCode(err error) string {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusConflict {
		return ""
	}
	return innerErrorCode(re)
}

// innerErrorCode returns the code of the innererror of a Key Vault error
// body, or "".
func innerErrorCode(re *azcore.ResponseError) string {
	if re.RawResponse == nil {
		return ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return ""
	}
	var e struct {
		Error struct {
			InnerError struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.InnerError.Code
}

// unavailable reports whether err means that the vault as a whole cannot
// serve now: throttled (429) or failing (5xx) after the SDK's retries,
// refusing the credentials (401, or Microsoft Entra refusing them), or not
// reached at all (connection, TLS, DNS, timeouts).
func unavailable(err error) bool {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500 || re.StatusCode == http.StatusUnauthorized
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		return true
	}
	// No answer from the vault: the transport's errors, and the
	// credential's own (tenant mismatch, Entra unreachable).
	return !errors.Is(err, destination.ErrConflict) && !errors.Is(err, destination.ErrNotOwned) &&
		!errors.Is(err, destination.ErrInvalidKey) && !errors.Is(err, destination.ErrInvalidValue) &&
		!errors.Is(err, errLocal)
}

// errLocal marks errors this package makes itself (a wait that ran out,
// too many tags): per change, never the vault's unavailability.
var errLocal = errors.New("azurekv")

func localf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errLocal, fmt.Sprintf(format, args...))
}

// wrap classifies the error of one change: ctx's error passes through
// unwrapped; an error meaning the vault cannot serve also matches
// destination.ErrUnavailable; a 403 names the permission Key Vault asks
// for.
func (d *Destination) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, destination.ErrUnavailable) {
		return err
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		if innerErrorCode(re) == "SecretDisabled" {
			return fmt.Errorf("the secret is disabled in Key Vault, so its value and version cannot be read: %w", err)
		}
		return fmt.Errorf("forbidden (the credentials need the Key Vault Secrets Officer role, or the access-policy permissions get, list, set, delete, recover and purge): %w", err)
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", destination.ErrUnavailable, err)
	}
	return err
}

// fail classifies an error of List.
func (d *Destination) fail(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("azurekv: %s: %w", what, d.wrap(ctx, err))
}
