package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secretsync/secretsync/audit"
	"github.com/secretsync/secretsync/registry"
)

// route sends an authenticated request to its endpoint.
func (h *handler) route(q *request) {
	path := q.r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, Prefix)
	sys := ok
	if !ok {
		rest, ok = strings.CutPrefix(path, SyncPrefix)
	}
	if !ok {
		writeError(q.w, http.StatusNotFound, "")
		return
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			writeError(q.w, http.StatusNotFound, "")
			return
		}
		segs[i] = u
	}
	if !sys {
		h.routeSyncs(q, segs)
		return
	}
	if h.reg == nil {
		writeError(q.w, http.StatusNotFound, "no registry is served")
		return
	}
	if segs[0] != "destinations" {
		writeError(q.w, http.StatusNotFound, "")
		return
	}
	m := q.r.Method
	switch len(segs) {
	case 1:
		if m == "LIST" || m == http.MethodGet && isTrue(q.r.URL.Query().Get("list")) {
			h.list(q)
			return
		}
		unsupported(q, "LIST", "GET")
		return
	case 3:
		typ, name := segs[1], segs[2]
		switch m {
		case http.MethodGet:
			h.read(q, typ, name)
		case http.MethodPost, http.MethodPut:
			h.write(q, typ, name)
		case http.MethodDelete:
			h.delete(q, typ, name)
		default:
			unsupported(q, "GET", "POST", "PUT", "DELETE")
		}
		return
	case 4, 5:
		if segs[3] != "associations" {
			break
		}
		typ, name := segs[1], segs[2]
		if len(segs) == 4 {
			if m != http.MethodGet {
				unsupported(q, "GET")
				return
			}
			h.associations(q, typ, name)
			return
		}
		if segs[4] != "set" && segs[4] != "remove" {
			break
		}
		if m != http.MethodPost && m != http.MethodPut {
			unsupported(q, "POST", "PUT")
			return
		}
		h.link(q, typ, name, segs[4] == "set")
		return
	}
	writeError(q.w, http.StatusNotFound, "")
}

func isTrue(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

// unsupported answers 405, as Vault does, with the methods the path has.
func unsupported(q *request, allow ...string) {
	q.w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(q.w, http.StatusMethodNotAllowed, "unsupported operation")
}

// list answers LIST /v1/sys/sync/destinations.
func (h *handler) list(q *request) {
	list, err := h.reg.List(q.r.Context())
	if err != nil {
		status, msg := errStatus(err, nil)
		writeError(q.w, status, msg)
		return
	}
	keys := registry.Types(list)
	if keys == nil {
		keys = []string{}
	}
	writeData(q, map[string]any{"key_info": list, "keys": keys}, nil)
}

// read answers GET /v1/sys/sync/destinations/:type/:name.
func (h *handler) read(q *request, typ, name string) {
	info, err := h.reg.Get(q.r.Context(), typ, name)
	if err != nil {
		status, msg := errStatus(err, nil)
		writeError(q.w, status, msg)
		return
	}
	writeData(q, destinationData(info), nil)
}

// destinationData is a destination as Vault shows it.
func destinationData(info registry.Info) map[string]any {
	details := info.ConnectionDetails
	if details == nil {
		details = map[string]any{}
	}
	return map[string]any{"connection_details": details, "name": info.Name, "type": info.Type}
}

// write answers POST /v1/sys/sync/destinations/:type/:name.
func (h *handler) write(q *request, typ, name string) {
	e := audit.Event{Type: EventDestinationWritten, Operation: "write",
		Attrs: map[string]string{"destination_type": typ, "destination_name": name}}
	dec := h.types[typ]
	if dec == nil {
		h.fail(q, e, http.StatusBadRequest, fmt.Sprintf("unsupported destination type %q", clip(typ)))
		return
	}
	body, ok := h.body(q, e)
	if !ok {
		return
	}
	cfg, err := dec(body)
	if err == nil && cfg == nil {
		err = &registry.ConfigError{Type: typ, Field: "config", Reason: "missing"}
	}
	if err == nil && cfg.Type() != typ {
		err = &registry.ConfigError{Type: typ, Field: "type", Reason: "the decoder of this type returned a Config of another type"}
	}
	if err != nil {
		var be *bodyError
		var ce *registry.ConfigError
		switch {
		case errors.As(err, &be):
			h.fail(q, e, http.StatusBadRequest, be.msg)
		case errors.As(err, &ce):
			h.fail(q, e, http.StatusBadRequest, configMessage(ce, stringsOf(body)))
		default:
			h.fail(q, e, http.StatusBadRequest, "request body cannot be decoded")
		}
		return
	}
	info, err := h.reg.Put(q.r.Context(), name, cfg)
	if err != nil {
		status, msg := errStatus(err, stringsOf(body))
		h.fail(q, e, status, msg)
		return
	}
	var warnings []string
	h.emit(q, e, http.StatusOK, &warnings)
	writeData(q, destinationData(info), warnings)
}

// delete answers DELETE /v1/sys/sync/destinations/:type/:name[?purge=true].
func (h *handler) delete(q *request, typ, name string) {
	e := audit.Event{Type: EventDestinationDeleted, Operation: "delete",
		Attrs: map[string]string{"destination_type": typ, "destination_name": name}}
	purge := false
	if v := q.r.URL.Query().Get("purge"); v != "" {
		var err error
		if purge, err = strconv.ParseBool(v); err != nil {
			h.fail(q, e, http.StatusBadRequest, "purge: not a boolean")
			return
		}
	}
	e.Attrs["purge"] = strconv.FormatBool(purge)
	if err := h.reg.Delete(q.r.Context(), typ, name, &registry.DeleteOptions{Purge: purge}); err != nil {
		status, msg := errStatus(err, nil)
		h.fail(q, e, status, msg)
		return
	}
	h.emit(q, e, http.StatusNoContent, nil)
	q.w.WriteHeader(http.StatusNoContent)
}

// associations answers GET /v1/sys/sync/destinations/:type/:name/associations.
func (h *handler) associations(q *request, typ, name string) {
	as, err := h.reg.Associations(q.r.Context(), typ, name)
	if err != nil {
		status, msg := errStatus(err, nil)
		writeError(q.w, status, msg)
		return
	}
	data, warnings := h.associationsData(q.r.Context(), typ, name, as)
	writeData(q, data, warnings)
}

// link answers POST .../associations/set (set true) and .../remove.
func (h *handler) link(q *request, typ, name string, set bool) {
	e := audit.Event{Type: EventAssociationRemoved, Operation: "remove",
		Attrs: map[string]string{"destination_type": typ, "destination_name": name}}
	if set {
		e.Type, e.Operation = EventAssociationSet, "set"
	}
	body, ok := h.body(q, e)
	if !ok {
		return
	}
	var ref registry.SecretRef
	if err := decodeStrict(body, &ref); err != nil {
		h.fail(q, e, http.StatusBadRequest, err.Error())
		return
	}
	e.Attrs["mount"], e.Attrs["secret_name"] = ref.Mount, ref.Name
	ctx := q.r.Context()
	var a registry.Association
	var err error
	if set {
		a, err = h.reg.Set(ctx, typ, name, ref, nil)
	} else {
		a, err = h.reg.Remove(ctx, typ, name, ref)
	}
	e.Sync = a.SyncName
	if err != nil && a.SyncName == "" {
		// Refused before the association was touched.
		status, msg := errStatus(err, stringsOf(body))
		h.fail(q, e, status, msg)
		return
	}
	var warnings []string
	if err != nil {
		// Recorded, and its sync failed: the status says so, as in Vault.
		e.Outcome, e.Message = audit.Failure, a.Message
		what := "sync"
		if !set {
			what = "unsync"
		}
		warnings = append(warnings, fmt.Sprintf("%s of %s failed (%s): %s", what, ref, string(a.Status), a.Message))
	}
	as, lerr := h.reg.Associations(ctx, typ, name)
	if lerr != nil {
		as = nil // deleted meanwhile: show the one association
	}
	if i := slices.IndexFunc(as, func(x registry.Association) bool { return x.Secret == a.Secret }); i >= 0 {
		as[i] = a
	} else {
		as = append(as, a) // removed: shown UNSYNCED, as in Vault
	}
	data, more := h.associationsData(ctx, typ, name, as)
	warnings = append(warnings, more...)
	h.emit(q, e, http.StatusOK, &warnings)
	writeData(q, data, warnings)
}

// association is one entry of associated_secrets.
type association struct {
	Accessor   string `json:"accessor"`
	SecretName string `json:"secret_name"`
	SyncStatus string `json:"sync_status"`
	UpdatedAt  string `json:"updated_at"`
}

// associationsData is the data of the associations answers, with the
// warnings of accessors that could not be found.
func (h *handler) associationsData(ctx context.Context, typ, name string, as []registry.Association) (map[string]any, []string) {
	var warnings []string
	accessors := map[string]string{}
	secrets := make(map[string]association, len(as))
	for _, a := range as {
		acc, ok := accessors[a.Secret.Mount]
		if !ok {
			acc = a.Secret.Mount
			if h.opts.Accessor != nil {
				if got, err := h.opts.Accessor(ctx, a.Secret.Mount); err == nil && got != "" {
					acc = got
				} else {
					warnings = append(warnings, fmt.Sprintf("the accessor of mount %q is unknown; associations of it are keyed by the mount path", a.Secret.Mount))
				}
			}
			accessors[a.Secret.Mount] = acc
		}
		secrets[acc+"/"+a.Secret.Name] = association{
			Accessor:   acc,
			SecretName: a.Secret.Name,
			SyncStatus: string(a.Status),
			UpdatedAt:  a.UpdatedAt.Format(time.RFC3339Nano),
		}
	}
	return map[string]any{"associated_secrets": secrets, "store_name": name, "store_type": typ}, warnings
}

// body reads the request's body, or answers 413 or 400 and returns false.
func (h *handler) body(q *request, e audit.Event) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, h.maxBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			h.fail(q, e, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", h.maxBytes))
		} else {
			h.fail(q, e, http.StatusBadRequest, "cannot read the request body")
		}
		return nil, false
	}
	return b, true
}

// fail audits a mutating call that failed and answers its error.
func (h *handler) fail(q *request, e audit.Event, status int, msg string) {
	e.Outcome, e.Message = audit.Failure, msg
	h.emit(q, e, status, nil)
	writeError(q.w, status, msg)
}

// errStatus returns the status and the message of a registry error.
// values are the strings of the request body, which the message of a
// *registry.ConfigError must not hold.
func errStatus(err error, values []string) (int, string) {
	var ce *registry.ConfigError
	var iu *registry.InUseError
	switch {
	case errors.As(err, &ce):
		return http.StatusBadRequest, configMessage(ce, values)
	case errors.As(err, &iu):
		return http.StatusBadRequest, fmt.Sprintf("destination %s/%s has %d association(s); remove them first, or delete with purge=true", iu.Type, iu.Name, iu.Associations)
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound, strings.TrimPrefix(err.Error(), "registry: ")
	case errors.Is(err, registry.ErrNoSealer):
		return http.StatusBadRequest, "this destination holds a credential, and the registry keeps its catalog without a sealer, so it cannot store it sealed; configure a sealer (a Transit key)"
	case errors.Is(err, registry.ErrNoSource):
		return http.StatusInternalServerError, "associations are unavailable: the registry has no source of secrets"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusInternalServerError, "request cancelled"
	}
	return http.StatusInternalServerError, strings.TrimPrefix(err.Error(), "registry: ")
}

// clip shortens a string from a request that an answer quotes.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
