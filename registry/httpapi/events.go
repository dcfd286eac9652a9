package httpapi

import (
	"strconv"

	"github.com/secretsync/secretsync/audit"
)

// The types of the audit events the handler emits, one per mutating call.
// Every event's Attrs hold "actor" (who made the call: the identity, never
// a token), "request_id", "remote_addr", "method", "path" and "status" (the
// HTTP status answered), and the names the call was about
// ("destination_type", "destination_name", "mount", "secret_name",
// "purge"; for the sync resources, Sync, Key and "action" or "ran": see
// EventSyncTriggered and EventResolveRequested). Events hold no value and no credential.
const (
	// EventDestinationWritten: a destination was created or its Config
	// replaced (or the attempt failed).
	EventDestinationWritten audit.Type = "DESTINATION_WRITTEN"
	// EventDestinationDeleted: a destination was deleted (or the attempt
	// failed).
	EventDestinationDeleted audit.Type = "DESTINATION_DELETED"
	// EventAssociationSet: a secret was associated with a destination and
	// synced; Sync names the association's sync. Outcome is Failure when
	// the association is recorded but its sync failed.
	EventAssociationSet audit.Type = "ASSOCIATION_SET"
	// EventAssociationRemoved: an association was removed and unsynced.
	EventAssociationRemoved audit.Type = "ASSOCIATION_REMOVED"
	// EventRequestDenied: a request that would have changed something was
	// refused before it reached the API: no or wrong credentials, or a
	// Host or Origin not allowed. Actor is empty.
	EventRequestDenied audit.Type = "API_REQUEST_DENIED"
)

// emit completes e with the request's details and sends it to the
// Auditor. When the Auditor fails, a warning is added to *warnings (when
// warnings is not nil).
func (h *handler) emit(q *request, e audit.Event, status int, warnings *[]string) {
	e.Time = h.opts.Now()
	if e.Outcome == "" {
		e.Outcome = audit.Success
	}
	attrs := map[string]string{
		"actor":       q.who,
		"request_id":  q.id,
		"remote_addr": q.r.RemoteAddr,
		"method":      q.r.Method,
		"path":        q.r.URL.Path,
		"status":      strconv.Itoa(status),
	}
	for k, v := range e.Attrs {
		attrs[k] = v
	}
	e.Attrs = attrs
	if err := h.auditor.Audit(q.r.Context(), e); err != nil && warnings != nil {
		*warnings = append(*warnings, "the audit event of this request could not be recorded")
	}
}
