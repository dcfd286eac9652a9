package destination

import (
	"context"
	"errors"
	"fmt"
)

// ApplyEach implements [Destination.Apply] for a store written one key at
// a time: it calls apply for each change, in order, on the calling
// goroutine, and returns one result per change in the order of changes:
// nil when apply returned nil, otherwise a *[KeyError] naming the change's
// operation ("put" or "delete") and key and wrapping apply's error.
//
// ApplyEach stops when ctx ends, or after a change whose error matches
// [ErrUnavailable] or, when stop is not nil, one for which stop reports
// true (an error after which no other change can succeed either, such as
// refused credentials, that is not ErrUnavailable). The changes applied
// before keep their nil result and the change in flight its own error;
// each change not attempted gets a *KeyError wrapping the error that
// stopped the call, which is also returned as the call's error:
//
//   - when ctx ended, ctx.Err() itself, unwrapped;
//   - otherwise the failed change's error, wrapped as "not attempted" in
//     the results and as "apply stopped" in the call error, so that
//     errors.Is and errors.As find in both what they find in it.
//
// ApplyEach checks ctx before each change, so apply need not; apply is
// given ctx and should return promptly once ctx ends. ApplyEach adds no
// synchronization: apply must be safe to call from as many goroutines as
// call ApplyEach at once.
func ApplyEach(ctx context.Context, changes []Change, apply func(ctx context.Context, c Change) error, stop func(error) bool) ([]error, error) {
	errs := make([]error, len(changes))
	for i, c := range changes {
		if err := ctx.Err(); err != nil {
			return notAttempted(errs, changes, i, err), err
		}
		err := apply(ctx, c)
		if err == nil {
			continue
		}
		errs[i] = &KeyError{Op: opOf(c), Key: c.Key, Err: err}
		if cerr := ctx.Err(); cerr != nil {
			return notAttempted(errs, changes, i+1, cerr), cerr
		}
		if errors.Is(err, ErrUnavailable) || stop != nil && stop(err) {
			return notAttempted(errs, changes, i+1, fmt.Errorf("not attempted: %w", err)), fmt.Errorf("apply stopped: %w", err)
		}
	}
	return errs, nil
}

// notAttempted gives every change from i on the error err, and returns
// errs.
func notAttempted(errs []error, changes []Change, i int, err error) []error {
	for j := i; j < len(changes); j++ {
		errs[j] = &KeyError{Op: opOf(changes[j]), Key: changes[j].Key, Err: err}
	}
	return errs
}

func opOf(c Change) string {
	if c.Delete {
		return "delete"
	}
	return "put"
}
