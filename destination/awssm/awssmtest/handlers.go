package awssmtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// apiError is an error answer: status, "__type" and message.
type apiError struct {
	status int
	typ    string
	msg    string
}

func badRequest(typ, msg string) *apiError { return &apiError{http.StatusBadRequest, typ, msg} }

func invalidParameter(msg string) *apiError { return badRequest("InvalidParameterException", msg) }

func validation(field, constraint string) *apiError {
	return badRequest("ValidationException", fmt.Sprintf("1 validation error detected: Value at '%s' failed to satisfy constraint: %s", field, constraint))
}

var (
	errNotFound      = badRequest("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	errMarkedDeleted = badRequest("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
	errInvalidName   = badRequest("ValidationException", "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	errInvalidToken  = badRequest("InvalidNextTokenException", "The NextToken value is invalid.")
)

// handler serves an operation for the access key key, which may do the
// actions authorizeRequest checks.
type handler func(s *Server, key string, body []byte) (any, *apiError)

var handlers = map[string]handler{
	"CreateSecret":         (*Server).createSecret,
	"PutSecretValue":       (*Server).putSecretValue,
	"GetSecretValue":       (*Server).getSecretValue,
	"BatchGetSecretValue":  (*Server).batchGetSecretValue,
	"DescribeSecret":       (*Server).describeSecret,
	"ListSecrets":          (*Server).listSecrets,
	"ListSecretVersionIds": (*Server).listSecretVersionIds,
	"DeleteSecret":         (*Server).deleteSecret,
	"RestoreSecret":        (*Server).restoreSecret,
	"TagResource":          (*Server).tagResource,
	"UntagResource":        (*Server).untagResource,
}

const contentType = "application/x-amz-json-1.1"

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, badRequest("SerializationException", "cannot read the request body"))
		return
	}
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), service+".")
	h := handlers[op]
	var ids struct {
		SecretID           string `json:"SecretId"`
		Name               string `json:"Name"`
		ClientRequestToken string `json:"ClientRequestToken"`
	}
	_ = json.Unmarshal(body, &ids)
	rec := Request{Op: op, SecretID: cmpOr(ids.SecretID, ids.Name), ClientRequestToken: ids.ClientRequestToken}

	var fault *Fault
	var key string // the access key that signed the request
	aerr := func() *apiError {
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/":
			return badRequest("UnknownOperationException", "The JSON protocol takes POST /.")
		case h == nil:
			return badRequest("UnknownOperationException", "Unknown operation "+strconv.Quote(r.Header.Get("X-Amz-Target"))+".")
		case r.Header.Get("Content-Type") != contentType:
			return badRequest("SerializationException", "Content-Type must be "+contentType+".")
		}
		var e *apiError
		key, e = s.verifySignature(r, body)
		return e
	}()
	s.mu.Lock()
	s.counts[op]++
	if aerr == nil {
		fault = s.takeFault(op)
	}
	s.mu.Unlock()

	var resp any
	if aerr == nil && fault != nil && fault.Hook != nil {
		fault.Hook()
	}
	if aerr == nil && fault != nil && fault.Delay > 0 {
		wait(r.Context(), fault.Delay)
	}
	switch {
	case aerr != nil:
	case fault != nil && fault.Status != 0 && !fault.AfterApply:
		aerr = fault.err()
	default:
		if !json.Valid(body) {
			aerr = badRequest("SerializationException", "The request body is not valid JSON.")
			break
		}
		s.mu.Lock()
		s.purge()
		if aerr = s.authorizeRequest(key, op, body); aerr == nil {
			resp, aerr = h(s, key, body)
		}
		s.mu.Unlock()
		if fault != nil && fault.Status != 0 {
			resp, aerr = nil, fault.err()
		}
	}

	if aerr != nil {
		rec.Status, rec.ErrorType = aerr.status, aerr.typ
		writeError(w, aerr)
	} else {
		rec.Status = http.StatusOK
		writeJSON(w, http.StatusOK, resp)
	}
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()
}

func (f *Fault) err() *apiError {
	e := &apiError{status: f.Status, typ: f.ErrorType}
	switch {
	case e.typ != "":
	case f.Status == http.StatusBadRequest:
		e.typ = "ThrottlingException"
	case f.Status == http.StatusServiceUnavailable:
		e.typ = "ServiceUnavailable"
	default:
		e.typ = "InternalServiceError"
	}
	switch e.typ {
	case "ThrottlingException":
		e.msg = "Rate exceeded"
	case "InternalServiceError":
		e.msg = "An error occurred on the server side."
	default:
		e.msg = "injected fault"
	}
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if v == nil {
		v = struct{}{}
	}
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString(`{"__type":"InternalServiceError","Message":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeError writes e as AWS does: modelled errors of the service carry
// "Message", the others (throttling, signature) "message".
func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]string{"__type": e.typ}
	switch e.typ {
	case "ResourceNotFoundException", "ResourceExistsException", "InvalidRequestException", "InvalidParameterException",
		"LimitExceededException", "InternalServiceError", "InvalidNextTokenException", "DecryptionFailure", "EncryptionFailure",
		"PreconditionNotMetException", "MalformedPolicyDocumentException":
		body["Message"] = e.msg
	default:
		body["message"] = e.msg
	}
	writeJSON(w, e.status, body)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// epoch is a timestamp as the JSON protocol sends it: seconds since the
// epoch, with milliseconds.
type epoch time.Time

// MarshalJSON writes seconds with three decimals.
func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

func ts(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

type tagJSON struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

type filterJSON struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("SerializationException", "Cannot deserialize the request: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)
	tagPattern    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	filterPattern = regexp.MustCompile(`^!?[a-zA-Z0-9 :_@/+=.\-!]*$`)
)

func checkName(name *string) *apiError {
	switch {
	case name == nil || *name == "":
		return validation("name", "Member must have length greater than or equal to 1")
	case len(*name) > MaxNameLength:
		return validation("name", "Member must have length less than or equal to 512")
	case !namePattern.MatchString(*name):
		return errInvalidName
	}
	return nil
}

func checkSecretID(id *string) *apiError {
	switch {
	case id == nil || *id == "":
		return validation("secretId", "Member must have length greater than or equal to 1")
	case len(*id) > 2048:
		return validation("secretId", "Member must have length less than or equal to 2048")
	}
	return nil
}

func checkToken(tok *string) *apiError {
	if tok != nil && (len(*tok) < 32 || len(*tok) > 64) {
		return validation("clientRequestToken", "Member must have length between 32 and 64")
	}
	return nil
}

// checkValue checks a SecretString / SecretBinary pair: at most one, each
// 1 to 65,536 bytes; required says one must be there.
func checkValue(str *string, bin []byte, binSet, required bool) *apiError {
	switch {
	case str != nil && binSet:
		return invalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	case required && str == nil && !binSet:
		return invalidParameter("You must provide either SecretString or SecretBinary.")
	case str != nil && len(*str) == 0:
		return validation("secretString", "Member must have length greater than or equal to 1")
	case str != nil && len(*str) > MaxSecretStringBytes:
		return validation("secretString", "Member must have length less than or equal to 65536")
	case str != nil && !utf8.ValidString(*str):
		return badRequest("SerializationException", "SecretString is not valid UTF-8.")
	case binSet && len(bin) == 0:
		return validation("secretBinary", "Member must have length greater than or equal to 1")
	case binSet && len(bin) > MaxSecretStringBytes:
		return validation("secretBinary", "Member must have length less than or equal to 65536")
	}
	return nil
}

func checkTags(tags []tagJSON) *apiError {
	if len(tags) > MaxTags {
		return validation("tags", "Member must have length less than or equal to 50")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t.Key == nil || *t.Key == "":
			return validation("tags.member.key", "Member must have length greater than or equal to 1")
		case t.Value == nil:
			return validation("tags.member.value", "Member must not be null")
		case utf8.RuneCountInString(*t.Key) > MaxTagKeyLength:
			return validation("tags.member.key", "Member must have length less than or equal to 128")
		case utf8.RuneCountInString(*t.Value) > MaxTagValueLength:
			return validation("tags.member.value", "Member must have length less than or equal to 256")
		case !tagPattern.MatchString(*t.Key) || !tagPattern.MatchString(*t.Value):
			return validation("tags.member", `Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
		case strings.HasPrefix(strings.ToLower(*t.Key), "aws:"):
			return invalidParameter("You can't use the aws: prefix in a tag key because it is reserved for AWS use.")
		case seen[*t.Key]:
			return invalidParameter("Duplicate tag keys in the request: " + *t.Key)
		}
		seen[*t.Key] = true
	}
	return nil
}

// setTags adds or replaces tags, refusing to go over MaxTags.
func (sec *secret) setTags(tags []tagJSON) *apiError {
	next := slices.Clone(sec.tags)
	for _, t := range tags {
		i := slices.IndexFunc(next, func(x tag) bool { return x.key == *t.Key })
		if i >= 0 {
			next[i].value = *t.Value
		} else {
			next = append(next, tag{*t.Key, *t.Value})
		}
	}
	if len(next) > MaxTags {
		return badRequest("LimitExceededException", "The secret would have more than 50 tags.")
	}
	sec.tags = next
	return nil
}

func (sec *secret) tagsJSON() []map[string]string {
	if len(sec.tags) == 0 {
		return nil
	}
	out := make([]map[string]string, len(sec.tags))
	for i, t := range sec.tags {
		out[i] = map[string]string{"Key": t.key, "Value": t.value}
	}
	return out
}

// addValue adds a version for token (a new UUID when empty) with str or
// bin, as PutSecretValue and CreateSecret do, honouring idempotency: a
// token that names a version with the same value returns it unchanged.
func (s *Server) addValue(sec *secret, token *string, str *string, bin []byte, stages []string) (*version, *apiError) {
	id := ""
	if token != nil {
		id = *token
	}
	if id != "" {
		if v := sec.version(id); v != nil {
			same := (str != nil && v.str != nil && *str == *v.str) || (str == nil && v.str == nil && bytes.Equal(bin, v.bin))
			if !same {
				return nil, badRequest("ResourceExistsException", "You can't modify an existing version, you can only create a new version.")
			}
			return v, nil
		}
	} else {
		id = newUUID()
	}
	now := s.opts.Now()
	if !sec.prune(s.opts.MaxVersions, now) {
		return nil, badRequest("LimitExceededException", fmt.Sprintf("You have exceeded the maximum number of versions (%d) of a secret; versions are kept for 24 hours.", s.opts.MaxVersions))
	}
	v := &version{id: id, created: now}
	if str != nil {
		c := *str
		v.str = &c
	} else {
		v.bin = slices.Clone(bin)
	}
	sec.addVersion(v, stages)
	sec.changed = now
	return v, nil
}

func (s *Server) createSecret(_ string, body []byte) (any, *apiError) {
	var in struct {
		Name               *string
		ClientRequestToken *string
		Description        *string
		SecretString       *string
		SecretBinary       *string
		Tags               []tagJSON
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	bin, binSet, e := decodeBinary(in.SecretBinary)
	if e != nil {
		return nil, e
	}
	if e := firstError(checkName(in.Name), checkToken(in.ClientRequestToken), checkValue(in.SecretString, bin, binSet, false), checkTags(in.Tags)); e != nil {
		return nil, e
	}
	if in.Description != nil && len(*in.Description) > 2048 {
		return nil, validation("description", "Member must have length less than or equal to 2048")
	}
	hasValue := in.SecretString != nil || binSet
	if sec := s.secrets[*in.Name]; sec != nil {
		if !sec.deleted.IsZero() {
			return nil, badRequest("InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		// A retry of a create that was carried out: same token, same value.
		if hasValue && in.ClientRequestToken != nil {
			if v := sec.version(*in.ClientRequestToken); v != nil {
				if _, e := s.addValue(sec, in.ClientRequestToken, in.SecretString, bin, nil); e != nil {
					return nil, e
				}
				return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id}, nil
			}
		}
		return nil, badRequest("ResourceExistsException", fmt.Sprintf("The operation failed because the secret %s already exists.", *in.Name))
	}
	sec := s.newSecret(*in.Name, s.opts.Now())
	if in.Description != nil {
		sec.description = *in.Description
	}
	_ = sec.setTags(in.Tags)
	out := map[string]any{"ARN": sec.arn, "Name": sec.name}
	if hasValue {
		v, e := s.addValue(sec, in.ClientRequestToken, in.SecretString, bin, nil)
		if e != nil {
			delete(s.secrets, sec.name)
			return nil, e
		}
		out["VersionId"] = v.id
	}
	return out, nil
}

func decodeBinary(b64 *string) ([]byte, bool, *apiError) {
	if b64 == nil {
		return nil, false, nil
	}
	b, err := base64.StdEncoding.DecodeString(*b64)
	if err != nil {
		return nil, false, badRequest("SerializationException", "SecretBinary is not valid base64.")
	}
	return b, true, nil
}

func firstError(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// live returns the secret id names, refusing one that does not exist or is
// scheduled for deletion.
func (s *Server) live(id *string) (*secret, *apiError) {
	if e := checkSecretID(id); e != nil {
		return nil, e
	}
	sec := s.find(*id)
	switch {
	case sec == nil:
		return nil, errNotFound
	case !sec.deleted.IsZero():
		return nil, errMarkedDeleted
	}
	return sec, nil
}

func (s *Server) putSecretValue(_ string, body []byte) (any, *apiError) {
	var in struct {
		SecretId           *string
		ClientRequestToken *string
		SecretString       *string
		SecretBinary       *string
		VersionStages      []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	bin, binSet, e := decodeBinary(in.SecretBinary)
	if e != nil {
		return nil, e
	}
	if e := firstError(checkSecretID(in.SecretId), checkToken(in.ClientRequestToken), checkValue(in.SecretString, bin, binSet, true)); e != nil {
		return nil, e
	}
	if in.VersionStages != nil && (len(in.VersionStages) == 0 || len(in.VersionStages) > 20) {
		return nil, validation("versionStages", "Member must have length between 1 and 20")
	}
	sec, e := s.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	v, e := s.addValue(sec, in.ClientRequestToken, in.SecretString, bin, in.VersionStages)
	if e != nil {
		return nil, e
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": slices.Clone(v.stages)}, nil
}

// value returns the version of sec that versionID and stage name (the
// AWSCURRENT one when both are empty).
func (sec *secret) value(versionID, stage string) (*version, *apiError) {
	var v *version
	switch {
	case versionID != "":
		v = sec.version(versionID)
		if v == nil {
			return nil, badRequest("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: "+versionID)
		}
		if stage != "" && !slices.Contains(v.stages, stage) {
			return nil, badRequest("InvalidRequestException", "You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		if stage == "" {
			stage = stageCurrent
		}
		v = sec.stage(stage)
		if v == nil {
			return nil, badRequest("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: "+stage)
		}
	}
	return v, nil
}

func valueJSON(sec *secret, v *version) map[string]any {
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": v.id, "VersionStages": slices.Clone(v.stages), "CreatedDate": ts(v.created)}
	if v.str != nil {
		out["SecretString"] = *v.str
	} else {
		out["SecretBinary"] = v.bin // encoding/json writes base64
	}
	return out
}

func (s *Server) getSecretValue(_ string, body []byte) (any, *apiError) {
	var in struct {
		SecretId     *string
		VersionId    *string
		VersionStage *string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	sec, e := s.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	v, e := sec.value(deref(in.VersionId), deref(in.VersionStage))
	if e != nil {
		return nil, e
	}
	return valueJSON(sec, v), nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (s *Server) batchGetSecretValue(key string, body []byte) (any, *apiError) {
	var in struct {
		SecretIdList []string
		Filters      []filterJSON
		MaxResults   *int
		NextToken    *string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	switch {
	case len(in.SecretIdList) > 0 && len(in.Filters) > 0:
		return nil, invalidParameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.")
	case len(in.SecretIdList) == 0 && len(in.Filters) == 0:
		return nil, invalidParameter("Either 'SecretIdList' or 'Filters' must be provided.")
	case in.MaxResults != nil && len(in.Filters) == 0:
		return nil, invalidParameter("'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.")
	case len(in.SecretIdList) > MaxBatchSecretIDs:
		return nil, validation("secretIdList", "Member must have length less than or equal to 20")
	case in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > MaxBatchSecretIDs):
		return nil, validation("maxResults", "Member must have value between 1 and 20")
	}
	values := []any{}
	errs := []any{}
	if len(in.SecretIdList) > 0 {
		for _, id := range in.SecretIdList {
			// IAM first: a denied caller learns nothing of the secret.
			arn, tags := s.secretResource(id)
			e := s.authorize(key, authRequest{action: service + ":GetSecretValue", resource: arn, shown: id, resTags: tags})
			var sec *secret
			if e == nil {
				sec, e = s.live(&id)
			}
			var v *version
			if e == nil {
				v, e = sec.value("", "")
			}
			if e != nil {
				errs = append(errs, map[string]string{"SecretId": id, "ErrorCode": e.typ, "Message": e.msg})
				continue
			}
			values = append(values, valueJSON(sec, v))
		}
		return map[string]any{"SecretValues": values, "Errors": errs}, nil
	}
	if e := checkFilters(in.Filters); e != nil {
		return nil, e
	}
	var match []*secret
	for _, sec := range s.sorted("", "asc") {
		if sec.deleted.IsZero() && sec.stage(stageCurrent) != nil && sec.matches(in.Filters) {
			match = append(match, sec)
		}
	}
	page, next, e := s.page(match, func(sec *secret) string { return seqKey(sec.seq) }, false, in.MaxResults, 20, in.NextToken)
	if e != nil {
		return nil, e
	}
	for _, sec := range page {
		arn, tags := s.secretResource(sec.arn)
		if e := s.authorize(key, authRequest{action: service + ":GetSecretValue", resource: arn, shown: sec.arn, resTags: tags}); e != nil {
			errs = append(errs, map[string]string{"SecretId": sec.arn, "ErrorCode": e.typ, "Message": e.msg})
			continue
		}
		values = append(values, valueJSON(sec, sec.stage(stageCurrent)))
	}
	out := map[string]any{"SecretValues": values, "Errors": errs}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

func (s *Server) describeSecret(_ string, body []byte) (any, *apiError) {
	var in struct{ SecretId *string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	sec := s.find(*in.SecretId)
	if sec == nil {
		return nil, errNotFound
	}
	return sec.describe("VersionIdsToStages"), nil
}

// describe is a secret as DescribeSecret and ListSecrets show it; they name
// the version map differently.
func (sec *secret) describe(versionsField string) map[string]any {
	out := map[string]any{
		"ARN":             sec.arn,
		"Name":            sec.name,
		"CreatedDate":     ts(sec.created),
		"LastChangedDate": ts(sec.changed),
	}
	if sec.description != "" {
		out["Description"] = sec.description
	}
	if !sec.deleted.IsZero() {
		out["DeletedDate"] = ts(sec.deleted)
	}
	if tags := sec.tagsJSON(); tags != nil {
		out["Tags"] = tags
	}
	if l := sec.labeled(); len(l) > 0 {
		out[versionsField] = l
	}
	return out
}

func checkFilters(filters []filterJSON) *apiError {
	if len(filters) > 10 {
		return validation("filters", "Member must have length less than or equal to 10")
	}
	for _, f := range filters {
		switch f.Key {
		case "description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all":
		default:
			return validation("filters.member.key", "Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]")
		}
		if len(f.Values) == 0 || len(f.Values) > 10 {
			return validation("filters.member.values", "Member must have length between 1 and 10")
		}
		for _, v := range f.Values {
			if len(v) > 512 || !filterPattern.MatchString(v) {
				return validation("filters.member.values.member", `Member must satisfy regular expression pattern: ^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`)
			}
		}
	}
	return nil
}

// matches applies filters as ListSecrets does: every filter must match;
// within one, any value; a value is a prefix (case-insensitive for
// description and all), or with a leading '!' the absence of that prefix.
func (sec *secret) matches(filters []filterJSON) bool {
	for _, f := range filters {
		var attrs []string
		fold := false
		switch f.Key {
		case "name":
			attrs = []string{sec.name}
		case "description":
			attrs, fold = strings.Fields(sec.description), true
			attrs = append(attrs, sec.description)
		case "tag-key":
			for _, t := range sec.tags {
				attrs = append(attrs, t.key)
			}
		case "tag-value":
			for _, t := range sec.tags {
				attrs = append(attrs, t.value)
			}
		case "all":
			fold = true
			attrs = append(attrs, sec.name, sec.description)
			for _, t := range sec.tags {
				attrs = append(attrs, t.key, t.value)
			}
		default: // primary-region, owning-service: no replication, no owning service
		}
		ok := false
		for _, v := range f.Values {
			neg := strings.HasPrefix(v, "!")
			v = strings.TrimPrefix(v, "!")
			hit := slices.ContainsFunc(attrs, func(a string) bool {
				if fold {
					return strings.HasPrefix(strings.ToLower(a), strings.ToLower(v)) || f.Key == "all" && strings.Contains(strings.ToLower(a), strings.ToLower(v))
				}
				return strings.HasPrefix(a, v)
			})
			if hit != neg {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func seqKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// sorted returns the secrets in the order ListSecrets gives them.
func (s *Server) sorted(by, order string) []*secret {
	all := make([]*secret, 0, len(s.secrets))
	for _, sec := range s.secrets {
		all = append(all, sec)
	}
	key := sortKey(by)
	sort.Slice(all, func(i, j int) bool {
		if order == "desc" {
			return key(all[i]) > key(all[j])
		}
		return key(all[i]) < key(all[j])
	})
	return all
}

func sortKey(by string) func(*secret) string {
	switch by {
	case "name":
		return func(sec *secret) string { return sec.name + "\x00" + seqKey(sec.seq) }
	case "last-changed-date":
		return func(sec *secret) string {
			return fmt.Sprintf("%020d", sec.changed.UnixNano()) + seqKey(sec.seq)
		}
	default: // created-date; last-accessed-date is not tracked
		return func(sec *secret) string { return seqKey(sec.seq) }
	}
}

type pageToken struct {
	After string `json:"a"`
	Desc  bool   `json:"d,omitempty"`
}

// page cuts items (sorted by key) into the page after token, of max items
// (def when max is nil; capped by Options.MaxPageSize), and returns the
// token of the next page ("" on the last).
func (s *Server) page(items []*secret, key func(*secret) string, desc bool, max *int, def int, token *string) ([]*secret, string, *apiError) {
	n := def
	if max != nil {
		n = *max
	}
	if s.opts.MaxPageSize > 0 && n > s.opts.MaxPageSize {
		n = s.opts.MaxPageSize
	}
	start := 0
	if token != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*token)
		var pt pageToken
		if err != nil || json.Unmarshal(raw, &pt) != nil || pt.Desc != desc {
			return nil, "", errInvalidToken
		}
		start = len(items)
		for i, it := range items {
			k := key(it)
			if desc && k < pt.After || !desc && k > pt.After {
				start = i
				break
			}
		}
	}
	end := min(start+n, len(items))
	page := items[start:end]
	next := ""
	if end < len(items) && len(page) > 0 {
		raw, _ := json.Marshal(pageToken{After: key(page[len(page)-1]), Desc: desc})
		next = base64.RawURLEncoding.EncodeToString(raw)
	}
	return page, next, nil
}

func (s *Server) listSecrets(_ string, body []byte) (any, *apiError) {
	var in struct {
		Filters                []filterJSON
		IncludePlannedDeletion *bool
		MaxResults             *int
		NextToken              *string
		SortBy                 string
		SortOrder              string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 100) {
		return nil, validation("maxResults", "Member must have value between 1 and 100")
	}
	switch in.SortOrder {
	case "", "asc", "desc":
	default:
		return nil, validation("sortOrder", "Member must satisfy enum value set: [asc, desc]")
	}
	switch in.SortBy {
	case "", "created-date", "last-accessed-date", "last-changed-date", "name":
	default:
		return nil, validation("sortBy", "Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]")
	}
	if e := checkFilters(in.Filters); e != nil {
		return nil, e
	}
	planned := in.IncludePlannedDeletion != nil && *in.IncludePlannedDeletion
	var match []*secret
	for _, sec := range s.sorted(in.SortBy, in.SortOrder) {
		if (planned || sec.deleted.IsZero()) && sec.matches(in.Filters) {
			match = append(match, sec)
		}
	}
	page, next, e := s.page(match, sortKey(in.SortBy), in.SortOrder == "desc", in.MaxResults, 100, in.NextToken)
	if e != nil {
		return nil, e
	}
	list := make([]any, len(page))
	for i, sec := range page {
		list[i] = sec.describe("SecretVersionsToStages")
	}
	out := map[string]any{"SecretList": list}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

func (s *Server) listSecretVersionIds(_ string, body []byte) (any, *apiError) {
	var in struct {
		SecretId          *string
		IncludeDeprecated *bool
		MaxResults        *int
		NextToken         *string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 100) {
		return nil, validation("maxResults", "Member must have value between 1 and 100")
	}
	sec := s.find(*in.SecretId)
	if sec == nil {
		return nil, errNotFound
	}
	deprecated := in.IncludeDeprecated != nil && *in.IncludeDeprecated
	var vs []*version
	for _, v := range sec.versions {
		if deprecated || len(v.stages) > 0 {
			vs = append(vs, v)
		}
	}
	// Paginate by position: versions are only ever appended or pruned.
	start := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil || n < 0 || n > len(vs) {
			return nil, errInvalidToken
		}
		start = n
	}
	size := 100
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	if s.opts.MaxPageSize > 0 && size > s.opts.MaxPageSize {
		size = s.opts.MaxPageSize
	}
	end := min(start+size, len(vs))
	list := make([]any, 0, end-start)
	for _, v := range vs[start:end] {
		e := map[string]any{"VersionId": v.id, "CreatedDate": ts(v.created)}
		if len(v.stages) > 0 {
			e["VersionStages"] = slices.Clone(v.stages)
		}
		list = append(list, e)
	}
	out := map[string]any{"ARN": sec.arn, "Name": sec.name, "Versions": list}
	if end < len(vs) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, nil
}

func (s *Server) deleteSecret(_ string, body []byte) (any, *apiError) {
	var in struct {
		SecretId                   *string
		RecoveryWindowInDays       *int64
		ForceDeleteWithoutRecovery *bool
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	force := in.ForceDeleteWithoutRecovery != nil && *in.ForceDeleteWithoutRecovery
	switch {
	case in.RecoveryWindowInDays != nil && force:
		return nil, invalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	case in.RecoveryWindowInDays != nil && (*in.RecoveryWindowInDays < 7 || *in.RecoveryWindowInDays > 30):
		return nil, invalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
	}
	now := s.opts.Now()
	sec := s.find(*in.SecretId)
	switch {
	case sec == nil && force:
		// Forcing the deletion of a secret that is not there succeeds.
		return map[string]any{"Name": *in.SecretId, "DeletionDate": ts(now)}, nil
	case sec == nil:
		return nil, errNotFound
	case force:
		delete(s.secrets, sec.name)
		return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": ts(now)}, nil
	case !sec.deleted.IsZero():
		return nil, errMarkedDeleted
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
	}
	sec.deleted, sec.purgeAt = now, now.Add(time.Duration(days)*24*time.Hour)
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "DeletionDate": ts(sec.purgeAt)}, nil
}

func (s *Server) restoreSecret(_ string, body []byte) (any, *apiError) {
	var in struct{ SecretId *string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkSecretID(in.SecretId); e != nil {
		return nil, e
	}
	sec := s.find(*in.SecretId)
	if sec == nil {
		return nil, errNotFound
	}
	sec.deleted, sec.purgeAt = time.Time{}, time.Time{}
	return map[string]any{"ARN": sec.arn, "Name": sec.name}, nil
}

func (s *Server) tagResource(_ string, body []byte) (any, *apiError) {
	var in struct {
		SecretId *string
		Tags     []tagJSON
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Tags == nil {
		return nil, validation("tags", "Member must not be null")
	}
	if e := checkTags(in.Tags); e != nil {
		return nil, e
	}
	sec, e := s.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	if e := sec.setTags(in.Tags); e != nil {
		return nil, e
	}
	return nil, nil
}

func (s *Server) untagResource(_ string, body []byte) (any, *apiError) {
	var in struct {
		SecretId *string
		TagKeys  []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.TagKeys == nil {
		return nil, validation("tagKeys", "Member must not be null")
	}
	sec, e := s.live(in.SecretId)
	if e != nil {
		return nil, e
	}
	for _, k := range in.TagKeys {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, invalidParameter("You can't use the aws: prefix in a tag key because it is reserved for AWS use.")
		}
	}
	sec.tags = slices.DeleteFunc(sec.tags, func(t tag) bool { return slices.Contains(in.TagKeys, t.key) })
	return nil, nil
}
