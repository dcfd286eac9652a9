package vercel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/secretsync/secretsync/registry"
)

// DefaultBaseURL is the base URL of Vercel's REST API.
const DefaultBaseURL = "https://api.vercel.com"

// Variable types of the API.
const (
	TypePlain     = "plain"
	TypeEncrypted = "encrypted"
	TypeSensitive = "sensitive"
	TypeSecret    = "secret" // legacy, read only
	TypeSystem    = "system"
)

// Deployment environments (targets) of a variable.
const (
	Development = "development"
	Preview     = "preview"
	Production  = "production"
)

// ClientOptions configures a Client. Token is required; the zero value of
// every other field means its default.
type ClientOptions struct {
	// Token is a Vercel access token, sent as "Authorization: Bearer".
	Token registry.Credential
	// TeamID is sent as the teamId query parameter of every request when
	// set (a project that belongs to a team needs it).
	TeamID string
	// BaseURL is the API's base URL; default DefaultBaseURL. Tests point
	// it at a verceltest.Server.
	BaseURL string
	// HTTPClient sends the requests; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// MaxRetries bounds the retries of one call after an answer 429 or
	// 5xx or a connection error; default 3, negative for none.
	MaxRetries int
	// MinBackoff is the first wait before a retry of a 5xx or a
	// connection error, doubled on each retry up to MaxBackoff; defaults
	// 250 ms and 5 s. A 429 waits instead until the time its
	// X-RateLimit-Reset (or Retry-After) header names.
	MinBackoff, MaxBackoff time.Duration
	// MaxWait is the longest a 429 may ask the client to wait before a
	// retry; a longer wait is not made and the 429 is returned. Default
	// 60 s.
	MaxWait time.Duration
	// UserAgent is sent as User-Agent; default "secretsync".
	UserAgent string
}

// Client is a small typed client for the project environment variable
// endpoints of Vercel's REST API, written with net/http (Vercel publishes
// no Go SDK). It sends the requests that the official @vercel/sdk and the
// Vercel CLI send: bearer authentication, and teamId on every request
// when the client has one.
//
// Answers 429 and 5xx and connection errors are retried up to
// ClientOptions.MaxRetries times: a 429 after the time named by its
// X-RateLimit-Reset header (epoch seconds) or Retry-After header, the
// others with exponential backoff and jitter. A create without upsert is
// not retried after a 5xx or a connection error, as it may have been
// applied (a 429 is retried: Vercel refuses it before doing anything).
//
// Errors of the API are *APIError; errors never hold a value, and the
// token is never printed. A Client is safe for concurrent use.
type Client struct {
	token     registry.Credential // prints as *****
	teamID    string
	base      *url.URL
	hc        *http.Client
	retries   int
	minWait   time.Duration
	maxWait   time.Duration
	maxReset  time.Duration
	userAgent string
	now       func() time.Time
}

// NewClient returns a Client, or an error when Token is empty or BaseURL
// is not an absolute http(s) URL.
// A nil options means the zero ClientOptions.
func NewClient(options *ClientOptions) (*Client, error) {
	var opts ClientOptions
	if options != nil {
		opts = *options
	}
	if opts.Token == "" {
		return nil, errors.New("vercel: ClientOptions.Token is empty")
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("vercel: ClientOptions.BaseURL %q is not an http(s) URL", base)
	}
	c := &Client{
		token: opts.Token, teamID: opts.TeamID, base: u, hc: opts.HTTPClient,
		retries: opts.MaxRetries, minWait: opts.MinBackoff, maxWait: opts.MaxBackoff,
		maxReset: opts.MaxWait, userAgent: opts.UserAgent, now: time.Now,
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	switch {
	case c.retries == 0:
		c.retries = 3
	case c.retries < 0:
		c.retries = 0
	}
	if c.minWait <= 0 {
		c.minWait = 250 * time.Millisecond
	}
	if c.maxWait <= 0 {
		c.maxWait = 5 * time.Second
	}
	if c.maxReset <= 0 {
		c.maxReset = 60 * time.Second
	}
	if c.userAgent == "" {
		c.userAgent = "secretsync"
	}
	return c, nil
}

// String describes the client without its token.
func (c *Client) String() string {
	return fmt.Sprintf("vercel.Client{BaseURL:%s TeamID:%q Token:*****}", c.base, c.teamID)
}

// GoString is like String, so that %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

// CloseIdleConnections closes the idle connections of the client's
// http.Client.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Targets is the target list of a variable. The API answers either a list
// or a single string; both decode into Targets.
type Targets []string

// UnmarshalJSON accepts a JSON array of strings or one string.
func (t *Targets) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = Targets{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*t = many
	return nil
}

// EnvVar is a project environment variable as the API answers it.
type EnvVar struct {
	ID    string `json:"id"`
	Key   string `json:"key"`
	Value string `json:"value"`
	// Type is TypePlain, TypeEncrypted, TypeSensitive, TypeSecret or
	// TypeSystem.
	Type                 string   `json:"type"`
	Target               Targets  `json:"target"`
	GitBranch            string   `json:"gitBranch"`
	CustomEnvironmentIDs []string `json:"customEnvironmentIds"`
	Comment              string   `json:"comment"`
	// CreatedAt and UpdatedAt are milliseconds since the epoch.
	CreatedAt int64 `json:"createdAt"`
	UpdatedAt int64 `json:"updatedAt"`
	// Decrypted reports that Value is the variable's value in clear
	// (rather than its ciphertext, or nothing for a sensitive variable).
	Decrypted bool `json:"decrypted"`
}

// String describes the variable without its value.
func (v EnvVar) String() string {
	return fmt.Sprintf("{ID:%s Key:%s Type:%s Target:%v GitBranch:%q Comment:%q UpdatedAt:%d Decrypted:%t Value:*****}",
		v.ID, v.Key, v.Type, []string(v.Target), v.GitBranch, v.Comment, v.UpdatedAt, v.Decrypted)
}

// GoString is like String, so that %#v does not print the value either.
func (v EnvVar) GoString() string { return v.String() }

// NewEnvVar is a variable to create.
type NewEnvVar struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// Type is TypeEncrypted, TypeSensitive or TypePlain.
	Type                 string   `json:"type"`
	Target               []string `json:"target,omitempty"`
	GitBranch            string   `json:"gitBranch,omitempty"`
	CustomEnvironmentIDs []string `json:"customEnvironmentIds,omitempty"`
	Comment              string   `json:"comment,omitempty"`
}

// String describes the variable without its value.
func (v NewEnvVar) String() string {
	return fmt.Sprintf("{Key:%s Type:%s Target:%v Comment:%q Value:*****}", v.Key, v.Type, v.Target, v.Comment)
}

// GoString is like String.
func (v NewEnvVar) GoString() string { return v.String() }

// EnvVarEdit is an edit of a variable: nil fields are left as they are.
type EnvVarEdit struct {
	Key     *string  `json:"key,omitempty"`
	Value   *string  `json:"value,omitempty"`
	Type    *string  `json:"type,omitempty"`
	Target  []string `json:"target,omitempty"`
	Comment *string  `json:"comment,omitempty"`
}

// String describes the edit without its value.
func (e EnvVarEdit) String() string {
	return fmt.Sprintf("{Key:%v Type:%v Target:%v Comment:%v Value:*****}", deref(e.Key), deref(e.Type), e.Target, deref(e.Comment))
}

// GoString is like String.
func (e EnvVarEdit) GoString() string { return e.String() }

func deref(p *string) string {
	if p == nil {
		return "<unchanged>"
	}
	return strconv.Quote(*p)
}

// APIError is an error answered by the API, after the client's retries.
// Message is the API's message with any value the request carried taken
// out; it never holds a value.
type APIError struct {
	// Op is the call: "list", "get", "create", "edit" or "delete".
	Op string
	// Status is the HTTP status.
	Status int
	// Code is the API's error code, for example "ENV_CONFLICT",
	// "RESERVED_ENV_VARIABLE", "forbidden", "not_found", "rate_limited".
	Code    string
	Message string
	// RetryAfter is how long a 429 asked to wait (0 when it did not say).
	RetryAfter time.Duration
	// EnvVarID is the id of the existing variable an ENV_CONFLICT names,
	// when the API names it.
	EnvVarID string
}

// Error describes the error.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	if e.Message == "" {
		return fmt.Sprintf("vercel: %s env: %d %s", e.Op, e.Status, code)
	}
	return fmt.Sprintf("vercel: %s env: %d %s: %s", e.Op, e.Status, code, e.Message)
}

// Conflict reports an answer that says the variable overlaps another one
// with the same key (ENV_CONFLICT, or ENV_ALREADY_EXISTS from older API
// versions).
func (e *APIError) Conflict() bool {
	return e.Code == "ENV_CONFLICT" || e.Code == "ENV_ALREADY_EXISTS"
}

// NotFound reports a 404.
func (e *APIError) NotFound() bool { return e.Status == http.StatusNotFound }

// Temporary reports an answer worth retrying later: 429 or 5xx.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// ListOptions are the options of ListEnv.
type ListOptions struct {
	// Decrypt asks for the values of encrypted variables in clear. The
	// API has deprecated it: check EnvVar.Decrypted and read the others
	// with GetEnv.
	Decrypt bool
	// GitBranch keeps only the variables of that branch.
	GitBranch string
}

// ListEnv returns every environment variable of the project (its id or
// name), following the answer's pagination (pagination.next, passed back
// as until) to the end.
// A nil options means the zero ListOptions.
func (c *Client) ListEnv(ctx context.Context, project string, options *ListOptions) ([]EnvVar, error) {
	var opts ListOptions
	if options != nil {
		opts = *options
	}
	var all []EnvVar
	var until *int64
	for pages := 0; ; pages++ {
		q := url.Values{}
		if opts.Decrypt {
			q.Set("decrypt", "true")
		}
		if opts.GitBranch != "" {
			q.Set("gitBranch", opts.GitBranch)
		}
		if until != nil {
			q.Set("until", strconv.FormatInt(*until, 10))
		}
		var page struct {
			Envs       []EnvVar `json:"envs"`
			Pagination *struct {
				Next *int64 `json:"next"`
			} `json:"pagination"`
		}
		if err := c.do(ctx, "list", http.MethodGet, "/v10/projects/"+url.PathEscape(project)+"/env", q, nil, "", true, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Envs...)
		if page.Pagination == nil || page.Pagination.Next == nil || len(page.Envs) == 0 {
			return all, nil
		}
		if until != nil && *page.Pagination.Next >= *until {
			return nil, &APIError{Op: "list", Status: http.StatusOK, Message: "pagination cursor did not advance"}
		}
		if pages > 10000 {
			return nil, &APIError{Op: "list", Status: http.StatusOK, Message: "too many pages"}
		}
		until = page.Pagination.Next
	}
}

// GetEnv returns the variable id of the project, with its value decrypted
// (except for a sensitive variable, whose value is never returned). A
// missing variable is an *APIError with Status 404.
func (c *Client) GetEnv(ctx context.Context, project, id string) (EnvVar, error) {
	var v EnvVar
	err := c.do(ctx, "get", http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/env/"+url.PathEscape(id), nil, nil, "", true, &v)
	return v, err
}

// CreateOptions are the options of CreateEnv.
type CreateOptions struct {
	// Upsert updates, in place, a variable with the same key and exactly
	// the same targets and git branch instead of failing with
	// ENV_CONFLICT. An upsert is retried after a 5xx or a connection
	// error; a plain create is not, as it may have been applied.
	Upsert bool
}

// CreateEnv creates the variable v in the project and returns it as the
// API answers it (its value encrypted, or absent). A variable with the
// same key whose targets overlap v's makes it fail with an *APIError for
// which Conflict is true (unless options.Upsert applies).
// A nil options means the zero CreateOptions.
func (c *Client) CreateEnv(ctx context.Context, project string, v NewEnvVar, options *CreateOptions) (EnvVar, error) {
	var opts CreateOptions
	if options != nil {
		opts = *options
	}
	q := url.Values{}
	if opts.Upsert {
		q.Set("upsert", "true")
	}
	body, err := json.Marshal(v)
	if err != nil {
		return EnvVar{}, fmt.Errorf("vercel: create env %s: encode: %w", v.Key, err)
	}
	var resp struct {
		Created json.RawMessage `json:"created"`
		Failed  []struct {
			Error apiErrorBody `json:"error"`
		} `json:"failed"`
	}
	if err := c.do(ctx, "create", http.MethodPost, "/v10/projects/"+url.PathEscape(project)+"/env", q, body, v.Value, opts.Upsert, &resp); err != nil {
		return EnvVar{}, err
	}
	created := bytes.TrimSpace(resp.Created)
	if len(created) == 0 || string(created) == "null" || string(created) == "[]" {
		if len(resp.Failed) > 0 {
			f := resp.Failed[0].Error
			return EnvVar{}, &APIError{Op: "create", Status: http.StatusBadRequest, Code: f.Code, Message: redact(f.Message, v.Value), EnvVarID: f.EnvVarID}
		}
		return EnvVar{}, &APIError{Op: "create", Status: http.StatusOK, Message: "the answer names no created variable"}
	}
	var out EnvVar
	if created[0] == '[' {
		var list []EnvVar
		if err := json.Unmarshal(created, &list); err != nil || len(list) == 0 {
			return EnvVar{}, &APIError{Op: "create", Status: http.StatusOK, Message: "cannot decode the created variable"}
		}
		out = list[0]
	} else if err := json.Unmarshal(created, &out); err != nil {
		return EnvVar{}, &APIError{Op: "create", Status: http.StatusOK, Message: "cannot decode the created variable"}
	}
	return out, nil
}

// EditEnv edits the variable id of the project and returns it as the API
// answers it. A missing variable is an *APIError with Status 404.
func (c *Client) EditEnv(ctx context.Context, project, id string, e EnvVarEdit) (EnvVar, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return EnvVar{}, fmt.Errorf("vercel: edit env %s: encode: %w", id, err)
	}
	value := ""
	if e.Value != nil {
		value = *e.Value
	}
	var out EnvVar
	err = c.do(ctx, "edit", http.MethodPatch, "/v9/projects/"+url.PathEscape(project)+"/env/"+url.PathEscape(id), nil, body, value, true, &out)
	return out, err
}

// DeleteEnv deletes the variable id of the project, at once (Vercel keeps
// no deleted variables). A missing variable is an *APIError with Status
// 404.
func (c *Client) DeleteEnv(ctx context.Context, project, id string) error {
	return c.do(ctx, "delete", http.MethodDelete, "/v9/projects/"+url.PathEscape(project)+"/env/"+url.PathEscape(id), nil, nil, "", true, nil)
}

type apiErrorBody struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	EnvVarID string `json:"envVarId"`
}

// do sends one call, with retries. secret is the value the body carries
// (taken out of any message); idempotent says whether a 5xx or a
// connection error may be retried.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, body []byte, secret string, idempotent bool, out any) error {
	if q == nil {
		q = url.Values{}
	}
	if c.teamID != "" {
		q.Set("teamId", c.teamID)
	}
	// The callers escape each segment of path with url.PathEscape.
	target := c.base.String() + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}

	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait, err := c.once(ctx, op, method, target, body, secret, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *APIError
		retriable := false
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			retriable = wait <= c.maxReset
		case errors.As(err, &ae) && ae.Status >= 500:
			retriable = idempotent
		case !errors.As(err, &ae):
			retriable = idempotent // a connection error
		}
		if !retriable || attempt >= c.retries {
			return err
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	d := c.minWait << attempt
	if d > c.maxWait || d <= 0 {
		d = c.maxWait
	}
	// Full jitter over the upper half.
	return d/2 + rand.N(d/2+1)
}

// once sends one request. For a 429 it returns how long the answer asks
// to wait.
func (c *Client) once(ctx context.Context, op, method, target string, body []byte, secret string, out any) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, fmt.Errorf("vercel: %s env: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("vercel: %s env: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("vercel: %s env: read answer: %w", op, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(bytes.TrimSpace(raw)) == 0 {
			return 0, nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			// The decoder's message may quote the body; say only where.
			return 0, &APIError{Op: op, Status: resp.StatusCode, Message: "cannot decode the answer"}
		}
		return 0, nil
	}
	var eb struct {
		Error apiErrorBody `json:"error"`
	}
	_ = json.Unmarshal(raw, &eb)
	ae := &APIError{Op: op, Status: resp.StatusCode, Code: eb.Error.Code, Message: redact(eb.Error.Message, secret), EnvVarID: eb.Error.EnvVarID}
	var wait time.Duration
	if resp.StatusCode == http.StatusTooManyRequests {
		wait = c.rateLimitWait(resp.Header)
		ae.RetryAfter = wait
	}
	return wait, ae
}

// rateLimitWait reads how long a 429 asks to wait: until X-RateLimit-Reset
// (epoch seconds), else Retry-After (seconds or an HTTP date); at least a
// little, so that a reset already past does not spin.
func (c *Client) rateLimitWait(h http.Header) time.Duration {
	const least = 50 * time.Millisecond
	now := c.now()
	if s := h.Get("X-RateLimit-Reset"); s != "" {
		if secs, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return max(time.Unix(secs, 0).Sub(now), least)
		}
	}
	if s := h.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && secs >= 0 {
			return max(time.Duration(secs)*time.Second, least)
		}
		if t, err := http.ParseTime(s); err == nil {
			return max(t.Sub(now), least)
		}
	}
	return 0
}

// redact takes secret out of msg.
func redact(msg, secret string) string {
	if secret == "" || msg == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "*****")
}
