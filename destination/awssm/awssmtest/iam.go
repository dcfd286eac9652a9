package awssmtest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// DefaultUser is the IAM user of Options.AccessKeyID, as error messages
// name it (arn:aws:iam::ACCOUNT:user/DefaultUser).
const DefaultUser = "awssmtest"

// accessKey is an access key the server accepts, with the identity-based
// policy that applies to its requests.
type accessKey struct {
	user   string
	secret string
	policy *policy // nil: every action allowed
}

// NewAccessKey adds an access key of the IAM user user and returns it.
// Its requests may do everything until Allow or SetPolicy restricts
// them. Each key has a policy of its own: in IAM it would be the
// user's, so give each user one key.
func (s *Server) NewAccessKey(user string) (id, secret string) {
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	const base64ish = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
	pick := func(chars string, n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = chars[int(b[i])%len(chars)]
		}
		return string(b)
	}
	id, secret = "AKIA"+pick(upper, 16), pick(base64ish, 40)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id] = &accessKey{user: user, secret: secret}
	return id, secret
}

// Allow replaces the policy of the access key id with one that allows
// exactly actions ("secretsmanager:PutSecretValue"; wildcards as in IAM)
// on every resource. With no actions, every request of the key is denied.
// It panics when the server does not know id.
func (s *Server) Allow(id string, actions ...string) {
	p := &policy{stmts: []statement{{actions: actions, resources: []string{"*"}}}}
	if err := s.setPolicy(id, p); err != nil {
		panic(err)
	}
}

// SetPolicy replaces the policy of the access key id with an IAM policy
// document (JSON), or with none (every action allowed) when document is
// empty. It refuses a document that uses what the server does not model
// (see the package documentation), rather than read it otherwise than
// IAM would.
func (s *Server) SetPolicy(id, document string) error {
	var p *policy
	if document != "" {
		var err error
		if p, err = parsePolicy(document); err != nil {
			return err
		}
	}
	return s.setPolicy(id, p)
}

func (s *Server) setPolicy(id string, p *policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		return fmt.Errorf("awssmtest: unknown access key %q", id)
	}
	k.policy = p
	return nil
}

// policy is an identity-based policy: its statements.
type policy struct{ stmts []statement }

type statement struct {
	deny       bool
	actions    []string // patterns, matched without regard to case
	resources  []string // patterns
	conditions []condition
}

// condition is one key of one operator of a Condition block.
type condition struct {
	op     string // StringEquals, StringNotEquals, StringLike, StringNotLike, Null
	key    string // as written
	values []string
}

// parsePolicy reads an IAM policy document, refusing the elements and
// condition keys the server does not model.
func parsePolicy(doc string) (*policy, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("awssmtest: policy: "+format, args...)
	}
	var raw struct {
		Version   string
		Id        string
		Statement json.RawMessage
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, bad("%v", err)
	}
	if raw.Version != "" && raw.Version != "2012-10-17" && raw.Version != "2008-10-17" {
		return nil, bad("unknown Version %q", raw.Version)
	}
	var stmts []json.RawMessage
	if s := bytes.TrimSpace(raw.Statement); len(s) > 0 && s[0] == '{' {
		stmts = []json.RawMessage{s}
	} else if err := json.Unmarshal(raw.Statement, &stmts); err != nil || len(stmts) == 0 {
		return nil, bad("Statement must be an object or a non-empty list of them")
	}
	p := &policy{}
	for i, rs := range stmts {
		var st struct {
			Sid       string
			Effect    string
			Action    json.RawMessage
			Resource  json.RawMessage
			Condition map[string]map[string]json.RawMessage
		}
		dec := json.NewDecoder(bytes.NewReader(rs))
		dec.DisallowUnknownFields() // NotAction, NotResource, Principal: not modelled
		if err := dec.Decode(&st); err != nil {
			return nil, bad("statement %d: %v", i, err)
		}
		out := statement{}
		switch st.Effect {
		case "Allow":
		case "Deny":
			out.deny = true
		default:
			return nil, bad("statement %d: Effect %q", i, st.Effect)
		}
		var err error
		if out.actions, err = stringOrList(st.Action); err != nil || len(out.actions) == 0 {
			return nil, bad("statement %d: Action must be a string or a non-empty list of them", i)
		}
		if out.resources, err = stringOrList(st.Resource); err != nil || len(out.resources) == 0 {
			return nil, bad("statement %d: Resource must be a string or a non-empty list of them", i)
		}
		for op, keys := range st.Condition {
			switch op {
			case "StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "Null":
			default:
				return nil, bad("statement %d: condition operator %q is not modelled", i, op)
			}
			for key, rv := range keys {
				if _, _, ok := tagKey(key); !ok {
					return nil, bad("statement %d: condition key %q is not modelled (only aws:RequestTag/, aws:ResourceTag/ and secretsmanager:ResourceTag/ keys)", i, key)
				}
				vals, err := stringOrList(rv)
				if err != nil || len(vals) == 0 {
					return nil, bad("statement %d: the values of %s %s must be a string or a non-empty list of them", i, op, key)
				}
				out.conditions = append(out.conditions, condition{op: op, key: key, values: vals})
			}
		}
		p.stmts = append(p.stmts, out)
	}
	return p, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, errors.New("missing")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	err := json.Unmarshal(raw, &list)
	return list, err
}

// tagKey splits a condition key on tags: whether it is about the
// request's tags, and which tag.
func tagKey(key string) (request bool, tag string, ok bool) {
	lower := strings.ToLower(key)
	for _, p := range []struct {
		prefix  string
		request bool
	}{{"aws:requesttag/", true}, {"aws:resourcetag/", false}, {"secretsmanager:resourcetag/", false}} {
		if strings.HasPrefix(lower, p.prefix) && len(key) > len(p.prefix) {
			return p.request, key[len(p.prefix):], true
		}
	}
	return false, "", false
}

// authRequest is what IAM sees of one action of a request.
type authRequest struct {
	action   string            // "secretsmanager:PutSecretValue"
	resource string            // the ARN; "" for an action that takes none
	shown    string            // the resource as the error message names it
	reqTags  map[string]string // the tags the request sets
	resTags  map[string]string // the tags of the secret, when it exists
}

// decide evaluates the policy as IAM does for one identity-based policy:
// an explicit deny wins, then any allow; otherwise the request is
// implicitly denied.
func (p *policy) decide(r authRequest) (allowed, explicitDeny bool) {
	for _, st := range p.stmts {
		if !st.matches(r) {
			continue
		}
		if st.deny {
			return false, true
		}
		allowed = true
	}
	return allowed, false
}

func (st *statement) matches(r authRequest) bool {
	hit := func(patterns []string, s string, fold bool) bool {
		for _, p := range patterns {
			if fold && glob(strings.ToLower(p), strings.ToLower(s)) || !fold && glob(p, s) {
				return true
			}
		}
		return false
	}
	resource := r.resource
	if resource == "" {
		resource = "*"
	}
	if !hit(st.actions, r.action, true) || !hit(st.resources, resource, false) {
		return false
	}
	for _, c := range st.conditions {
		if !c.holds(r) {
			return false
		}
	}
	return true
}

// holds evaluates a condition: any of its values matches (none, for a
// negated operator); a key absent from the request matches only the
// negated operators and Null "true".
func (c condition) holds(r authRequest) bool {
	request, tag, _ := tagKey(c.key)
	tags := r.resTags
	if request {
		tags = r.reqTags
	}
	v, present := tags[tag]
	anyOf := func(match func(pattern string) bool) bool {
		for _, want := range c.values {
			if match(want) {
				return true
			}
		}
		return false
	}
	switch c.op {
	case "StringEquals":
		return present && anyOf(func(w string) bool { return w == v })
	case "StringNotEquals":
		return !present || !anyOf(func(w string) bool { return w == v })
	case "StringLike":
		return present && anyOf(func(w string) bool { return glob(w, v) })
	case "StringNotLike":
		return !present || !anyOf(func(w string) bool { return glob(w, v) })
	case "Null":
		return anyOf(func(w string) bool { return w == "true" && !present || w == "false" && present })
	}
	return false
}

// glob matches s against pattern, where '*' stands for any run of
// characters and '?' for one.
func glob(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if glob(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

// authorize checks that the access key id may do r, and returns AWS's
// AccessDeniedException when it may not. s.mu is held.
func (s *Server) authorize(id string, r authRequest) *apiError {
	k := s.keys[id]
	if k == nil {
		return &apiError{http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if k.policy == nil {
		return nil
	}
	allowed, explicit := k.policy.decide(r)
	if allowed && !explicit {
		return nil
	}
	msg := fmt.Sprintf("User: arn:aws:iam::%s:user/%s is not authorized to perform: %s", s.opts.AccountID, k.user, r.action)
	if r.resource != "" {
		msg += " on resource: " + r.shown
	}
	if explicit {
		msg += " with an explicit deny in an identity-based policy"
	} else {
		msg += " because no identity-based policy allows the " + r.action + " action"
	}
	return badRequest("AccessDeniedException", msg)
}

// secretResource returns what IAM sees of the secret a request names by
// id (a name or an ARN): its ARN, and its tags when it exists; for a name
// that does not exist, the ARN it would have. s.mu is held.
func (s *Server) secretResource(id string) (arn string, tags map[string]string) {
	if sec := s.find(id); sec != nil {
		tags = make(map[string]string, len(sec.tags))
		for _, t := range sec.tags {
			tags[t.key] = t.value
		}
		return sec.arn, tags
	}
	if strings.HasPrefix(id, "arn:") {
		return id, nil
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opts.Region, s.opts.AccountID, id, randomSuffix()), nil
}

// authorizeRequest checks the actions a request of op needs, but for the
// GetSecretValue of each secret that BatchGetSecretValue reads, which
// the handler checks. s.mu is held.
func (s *Server) authorizeRequest(id, op string, body []byte) *apiError {
	var in struct {
		SecretID *string `json:"SecretId"`
		Name     *string
		Tags     []tagJSON
		Filters  []filterJSON
	}
	_ = json.Unmarshal(body, &in)
	action := service + ":" + op
	switch op {
	case "ListSecrets":
		return s.authorize(id, authRequest{action: action})
	case "BatchGetSecretValue":
		if e := s.authorize(id, authRequest{action: action}); e != nil {
			return e
		}
		if len(in.Filters) > 0 { // AWS: filters need ListSecrets too
			return s.authorize(id, authRequest{action: service + ":ListSecrets"})
		}
		return nil
	case "CreateSecret":
		// The resource is the ARN a new secret of that name gets; CreateSecret
		// has no aws:ResourceTag, even when the name is taken.
		name := deref(in.Name)
		arn := fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opts.Region, s.opts.AccountID, name, randomSuffix())
		r := authRequest{action: action, resource: arn, shown: name, reqTags: tagMap(in.Tags)}
		if e := s.authorize(id, r); e != nil {
			return e
		}
		if len(in.Tags) > 0 { // AWS: tags at creation need TagResource too
			r.action = service + ":TagResource"
			return s.authorize(id, r)
		}
		return nil
	}
	secretID := deref(in.SecretID)
	arn, tags := s.secretResource(secretID)
	r := authRequest{action: action, resource: arn, shown: secretID, resTags: tags}
	if op == "TagResource" {
		r.reqTags = tagMap(in.Tags)
	}
	return s.authorize(id, r)
}

func tagMap(tags []tagJSON) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		if t.Key != nil && t.Value != nil {
			m[*t.Key] = *t.Value
		}
	}
	return m
}
