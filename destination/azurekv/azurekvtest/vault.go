package azurekvtest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// vaultError writes an error as Key Vault does.
func vaultError(w http.ResponseWriter, status int, code, msg, inner string) int {
	e := map[string]any{"code": code, "message": msg}
	if inner != "" {
		e["innererror"] = map[string]any{"code": inner}
	}
	return writeJSON(w, status, map[string]any{"error": e})
}

func notFound(w http.ResponseWriter, what string) int {
	return vaultError(w, http.StatusNotFound, "SecretNotFound",
		fmt.Sprintf("A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", what), "")
}

func deletedNotFound(w http.ResponseWriter, name string) int {
	return vaultError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("Deleted Secret not found: %s", name), "")
}

func badParameter(w http.ResponseWriter, msg string) int {
	return vaultError(w, http.StatusBadRequest, "BadParameter", msg, "")
}

// nameState answers a request that needs name active or absent when it is
// in another state; it returns 0 when it is active or absent.
func nameState(w http.ResponseWriter, sec *secret, name string) int {
	if sec == nil {
		return 0
	}
	switch sec.state {
	case StateDeleted:
		return vaultError(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name), "ObjectIsDeletedButRecoverable")
	case StateDeleting, StatePurging:
		return vaultError(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently being deleted and cannot be re-created; retry later.", name), "ObjectIsBeingDeleted")
	case StateRecovering:
		return vaultError(w, http.StatusConflict, "Conflict", fmt.Sprintf("Secret %s is currently being recovered and cannot be re-created; retry later.", name), "ObjectIsBeingRecovered")
	}
	return 0
}

// vaultRoute returns the operation of a vault request, the secret name
// and version in its path.
func vaultRoute(method string, segs []string) (op, name, ver string) {
	switch {
	case len(segs) == 1 && segs[0] == "secrets" && method == http.MethodGet:
		return OpListSecrets, "", ""
	case len(segs) == 1 && segs[0] == "deletedsecrets" && method == http.MethodGet:
		return OpListDeletedSecrets, "", ""
	case len(segs) < 2 || len(segs) > 3:
		return OpUnknown, "", ""
	}
	name = segs[1]
	if segs[0] == "deletedsecrets" {
		switch {
		case len(segs) == 2 && method == http.MethodGet:
			return OpGetDeletedSecret, name, ""
		case len(segs) == 2 && method == http.MethodDelete:
			return OpPurgeSecret, name, ""
		case len(segs) == 3 && segs[2] == "recover" && method == http.MethodPost:
			return OpRecoverSecret, name, ""
		}
		return OpUnknown, name, ""
	}
	if len(segs) == 3 {
		ver = segs[2]
	}
	switch {
	case len(segs) == 2 && method == http.MethodPut:
		return OpSetSecret, name, ""
	case len(segs) == 2 && method == http.MethodDelete:
		return OpDeleteSecret, name, ""
	case ver == "versions" && method == http.MethodGet:
		return OpListVersions, name, ""
	case method == http.MethodGet:
		return OpGetSecret, name, ver
	case len(segs) == 3 && method == http.MethodPatch:
		return OpUpdateSecret, name, ver
	}
	return OpUnknown, name, ""
}

// permissionOf is the access-policy permission each operation needs.
var permissionOf = map[string]string{
	OpSetSecret: PermSet, OpUpdateSecret: PermSet,
	OpGetSecret: PermGet, OpGetDeletedSecret: PermGet,
	OpListSecrets: PermList, OpListVersions: PermList, OpListDeletedSecrets: PermList,
	OpDeleteSecret: PermDelete, OpRecoverSecret: PermRecover, OpPurgeSecret: PermPurge,
}

// serve answers every request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	segs := splitPath(r.URL)
	req := Request{Method: r.Method, Host: r.Host, Path: r.URL.Path}
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if len(segs) == 0 || (segs[0] != "secrets" && segs[0] != "deletedsecrets") {
		op, tenant := entraOp(r, segs)
		req.Op = op
		req.Status = s.serveEntra(w, r, op, tenant)
		s.record(req, op)
		return
	}
	op, name, ver := vaultRoute(r.Method, segs)
	req.Op, req.Name, req.APIVersion = op, name, r.URL.Query().Get("api-version")
	if !s.authorized(r) {
		req.Status = s.challenge(w, r)
		s.record(req, OpChallenge)
		return
	}
	req.Authorized = true
	req.Status = s.serveVault(w, r, op, name, ver)
	s.record(req, op)
}

func (s *Server) record(req Request, counter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[counter]++
	s.log = append(s.log, req)
}

func splitPath(u *url.URL) []string {
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	if p == "" {
		return nil
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if v, err := url.PathUnescape(seg); err == nil {
			segs[i] = v
		}
	}
	return segs
}

// serveVault answers an authorized vault request.
func (s *Server) serveVault(w http.ResponseWriter, r *http.Request, op, name, ver string) int {
	if op == OpUnknown {
		return vaultError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The requested operation %s %s is not supported.", r.Method, r.URL.Path), "")
	}
	if r.URL.Query().Get("api-version") == "" {
		return badParameter(w, "The api-version query parameter is required.")
	}
	// Faults, before anything changes.
	s.mu.Lock()
	var f *Fault
	for i := range s.faults {
		if s.faults[i].n > 0 && (s.faults[i].Op == "" || s.faults[i].Op == op) {
			s.faults[i].n--
			ff := s.faults[i].Fault
			f = &ff
			break
		}
	}
	s.faults = slices.DeleteFunc(s.faults, func(f fault) bool { return f.n <= 0 })
	perms, hook := s.perms, s.hook
	s.mu.Unlock()
	if f != nil {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
		}
		if f.Status == http.StatusTooManyRequests {
			return vaultError(w, f.Status, "Throttled", "Request was not processed because too many requests were received. Reason: A maximum of 4000 transactions may be made per 10 seconds for this vault.", "")
		}
		return vaultError(w, f.Status, "InternalServerError", "The service encountered an internal error. Please try again.", "")
	}
	if perm := permissionOf[op]; perms != nil && !perms[perm] {
		return vaultError(w, http.StatusForbidden, "Forbidden",
			fmt.Sprintf("The user, group or application 'appid=%s;oid=%s;iss=https://sts.windows.net/%s/' does not have secrets %s permission on key vault '%s;location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287", s.opts.ClientID, newID(), s.opts.TenantID, perm, s.opts.VaultName),
			"AccessDenied")
	}
	if name != "" && !validName(name) {
		return badParameter(w, fmt.Sprintf("The request URI contains an invalid name: %s", name))
	}
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil {
			return badParameter(w, "The request body could not be read.")
		}
	}
	if hook != nil {
		hook(op, name)
	}
	// Ids name the vault without the default port, even when the request
	// (a nextLink) named it.
	base := "https://" + strings.TrimSuffix(r.Host, ":443")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case OpSetSecret:
		return s.setSecret(w, base, name, body)
	case OpGetSecret:
		return s.getSecret(w, base, name, ver)
	case OpUpdateSecret:
		return s.updateSecret(w, base, name, ver, body)
	case OpDeleteSecret:
		return s.deleteSecret(w, base, name)
	case OpListSecrets, OpListVersions, OpListDeletedSecrets:
		return s.list(w, r, base, op, name)
	case OpGetDeletedSecret:
		sec := s.lookup(name)
		if sec == nil || sec.state != StateDeleted {
			return deletedNotFound(w, name)
		}
		return writeJSON(w, http.StatusOK, s.deletedBundle(base, sec))
	case OpRecoverSecret:
		return s.recoverSecret(w, base, name)
	case OpPurgeSecret:
		return s.purgeSecret(w, name)
	}
	panic("unreachable")
}

// JSON shapes, as Key Vault sends them.
type attributesJSON struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

type bundleJSON struct {
	Value              *string           `json:"value,omitempty"`
	ContentType        string            `json:"contentType,omitempty"`
	ID                 string            `json:"id"`
	Attributes         attributesJSON    `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        int64             `json:"deletedDate,omitempty"`
	ScheduledPurgeDate int64             `json:"scheduledPurgeDate,omitempty"`
}

func (s *Server) attributes(v *version) attributesJSON {
	level := "Recoverable+Purgeable"
	if s.opts.PurgeProtection {
		level = "Recoverable"
	}
	enabled := v.enabled
	return attributesJSON{Enabled: &enabled, Created: v.created, Updated: v.updated,
		RecoveryLevel: level, RecoverableDays: s.opts.RecoverableDays}
}

// bundle is a SecretBundle: one version, with its value when withValue.
func (s *Server) bundle(base string, sec *secret, v *version, withValue bool) bundleJSON {
	b := bundleJSON{ID: base + "/secrets/" + sec.name + "/" + v.id, ContentType: v.contentType,
		Attributes: s.attributes(v), Tags: maps.Clone(v.tags)}
	if withValue {
		val := v.value
		b.Value = &val
	}
	return b
}

func (s *Server) deletedBundle(base string, sec *secret) bundleJSON {
	b := s.bundle(base, sec, sec.latest, false)
	b.RecoveryID = base + "/deletedsecrets/" + sec.name
	b.DeletedDate = sec.deleted
	b.ScheduledPurgeDate = time.Unix(sec.deleted, 0).AddDate(0, 0, s.opts.RecoverableDays).Unix()
	return b
}

type setBody struct {
	Value       *string            `json:"value"`
	ContentType *string            `json:"contentType"`
	Attributes  *setAttributes     `json:"attributes"`
	Tags        map[string]*string `json:"tags"`
}

type setAttributes struct {
	Enabled *bool `json:"enabled"`
}

// checkTags checks tags against Key Vault's limits and returns them.
func checkTags(tags map[string]*string) (map[string]string, string) {
	if len(tags) > MaxTags {
		return nil, fmt.Sprintf("The number of tags (%d) exceeds the maximum of %d.", len(tags), MaxTags)
	}
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		val := ""
		if v != nil {
			val = *v
		}
		switch {
		case k == "":
			return nil, "A tag name must not be empty."
		case utf8.RuneCountInString(k) > MaxTagNameLength:
			return nil, fmt.Sprintf("A tag name exceeds the maximum length of %d characters.", MaxTagNameLength)
		case utf8.RuneCountInString(val) > MaxTagValueLength:
			return nil, fmt.Sprintf("The value of tag %q exceeds the maximum length of %d characters.", k, MaxTagValueLength)
		}
		out[k] = val
	}
	return out, ""
}

func (s *Server) setSecret(w http.ResponseWriter, base, name string, body []byte) int {
	var in setBody
	if err := json.Unmarshal(body, &in); err != nil {
		return badParameter(w, "The request body is not valid JSON.")
	}
	if in.Value == nil {
		return badParameter(w, "Property value is required.")
	}
	if len(*in.Value) > MaxValueBytes {
		return badParameter(w, fmt.Sprintf("The secret value exceeds the maximum size of %d bytes.", MaxValueBytes))
	}
	ct := ""
	if in.ContentType != nil {
		ct = *in.ContentType
	}
	if utf8.RuneCountInString(ct) > MaxContentTypeLength {
		return badParameter(w, fmt.Sprintf("The content type exceeds the maximum length of %d characters.", MaxContentTypeLength))
	}
	tags, msg := checkTags(in.Tags)
	if msg != "" {
		return badParameter(w, msg)
	}
	if status := nameState(w, s.lookup(name), name); status != 0 {
		return status
	}
	enabled := in.Attributes == nil || in.Attributes.Enabled == nil || *in.Attributes.Enabled
	v := s.addVersion(name, *in.Value, ct, tags, enabled)
	return writeJSON(w, http.StatusOK, s.bundle(base, s.lookup(name), v, true))
}

func (s *Server) getSecret(w http.ResponseWriter, base, name, ver string) int {
	sec := s.lookup(name)
	if sec == nil || sec.state != StateActive {
		return notFound(w, name)
	}
	v := sec.latest
	if ver != "" {
		if v = sec.versions[strings.ToLower(ver)]; v == nil {
			return notFound(w, name+"/"+ver)
		}
	}
	if !v.enabled {
		return vaultError(w, http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
	}
	return writeJSON(w, http.StatusOK, s.bundle(base, sec, v, true))
}

func (s *Server) updateSecret(w http.ResponseWriter, base, name, ver string, body []byte) int {
	var in setBody
	if err := json.Unmarshal(body, &in); err != nil {
		return badParameter(w, "The request body is not valid JSON.")
	}
	sec := s.lookup(name)
	if sec == nil || sec.state != StateActive {
		return notFound(w, name)
	}
	v := sec.latest
	if ver != "" {
		if v = sec.versions[strings.ToLower(ver)]; v == nil {
			return notFound(w, name+"/"+ver)
		}
	}
	if in.Tags != nil {
		tags, msg := checkTags(in.Tags)
		if msg != "" {
			return badParameter(w, msg)
		}
		v.tags = tags
	}
	if in.ContentType != nil {
		v.contentType = *in.ContentType
	}
	if in.Attributes != nil && in.Attributes.Enabled != nil {
		v.enabled = *in.Attributes.Enabled
	}
	v.updated = s.opts.Now().Unix()
	return writeJSON(w, http.StatusOK, s.bundle(base, sec, v, false))
}

func (s *Server) deleteSecret(w http.ResponseWriter, base, name string) int {
	sec := s.lookup(name)
	if sec == nil || sec.state != StateActive {
		return notFound(w, name)
	}
	sec.deleted = s.opts.Now().Unix()
	s.transition(strings.ToLower(name), sec, StateDeleting, StateDeleted, s.opts.DeleteDelay)
	return writeJSON(w, http.StatusOK, s.deletedBundle(base, sec))
}

func (s *Server) recoverSecret(w http.ResponseWriter, base, name string) int {
	sec := s.lookup(name)
	switch {
	case sec != nil && sec.state == StateDeleting:
		return vaultError(w, http.StatusConflict, "Conflict", "Secret is currently being deleted.", "ObjectIsBeingDeleted")
	case sec == nil || sec.state != StateDeleted:
		return deletedNotFound(w, name)
	}
	s.transition(strings.ToLower(name), sec, StateRecovering, StateActive, s.opts.RecoverDelay)
	return writeJSON(w, http.StatusOK, s.bundle(base, sec, sec.latest, false))
}

func (s *Server) purgeSecret(w http.ResponseWriter, name string) int {
	if s.opts.PurgeProtection {
		return vaultError(w, http.StatusForbidden, "Forbidden", "Operation \"purge\" is not enabled for this vault.", "")
	}
	sec := s.lookup(name)
	switch {
	case sec != nil && sec.state == StateDeleting:
		return vaultError(w, http.StatusConflict, "Conflict", "Secret is currently being deleted.", "ObjectIsBeingDeleted")
	case sec == nil || sec.state != StateDeleted:
		return deletedNotFound(w, name)
	}
	s.transition(strings.ToLower(name), sec, StatePurging, "", s.opts.PurgeDelay)
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

type listItem struct {
	sortKey string
	item    bundleJSON
}

// list answers the three list operations, paged as Key Vault pages:
// maxresults (1 to 25) items per page, and a nextLink with an opaque
// $skiptoken while more remain.
func (s *Server) list(w http.ResponseWriter, r *http.Request, base, op, name string) int {
	q := r.URL.Query()
	size := s.opts.PageSize
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > MaxPageSize {
			return badParameter(w, fmt.Sprintf("invalid maxresults: %q (1 to %d)", m, MaxPageSize))
		}
		size = n
	}
	after := ""
	if tok := q.Get("$skiptoken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return badParameter(w, "The $skiptoken is not valid.")
		}
		after = string(b)
	}
	var items []listItem
	switch op {
	case OpListSecrets, OpListDeletedSecrets:
		s.settleAll()
		want := StateActive
		if op == OpListDeletedSecrets {
			want = StateDeleted
		}
		for key, sec := range s.secrets {
			if sec.state != want {
				continue
			}
			var it bundleJSON
			if op == OpListDeletedSecrets {
				it = s.deletedBundle(base, sec)
			} else {
				it = s.bundle(base, sec, sec.latest, false)
			}
			it.ID = base + "/secrets/" + sec.name // items carry the base id
			items = append(items, listItem{key, it})
		}
	case OpListVersions:
		// Key Vault lists the versions of a secret it does not have as
		// an empty list.
		if sec := s.lookup(name); sec != nil && sec.state == StateActive {
			for id, v := range sec.versions {
				items = append(items, listItem{id, s.bundle(base, sec, v, false)})
			}
		}
	}
	slices.SortFunc(items, func(a, b listItem) int { return cmp.Compare(a.sortKey, b.sortKey) })
	start := 0
	if after != "" {
		start, _ = slices.BinarySearchFunc(items, after, func(it listItem, k string) int {
			if it.sortKey <= k {
				return -1
			}
			return 1
		})
	}
	end := min(start+size, len(items))
	page := struct {
		Value    []bundleJSON `json:"value"`
		NextLink *string      `json:"nextLink"`
	}{Value: []bundleJSON{}}
	for _, it := range items[start:end] {
		page.Value = append(page.Value, it.item)
	}
	if end < len(items) {
		// Key Vault's nextLink names the port.
		host := base
		if !strings.Contains(strings.TrimPrefix(base, "https://"), ":") {
			host += ":443"
		}
		link := fmt.Sprintf("%s%s?api-version=%s&$skiptoken=%s&maxresults=%d", host, r.URL.EscapedPath(),
			url.QueryEscape(q.Get("api-version")), base64.RawURLEncoding.EncodeToString([]byte(items[end-1].sortKey)), size)
		page.NextLink = &link
	}
	return writeJSON(w, http.StatusOK, page)
}
