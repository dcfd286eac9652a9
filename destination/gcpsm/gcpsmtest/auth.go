package gcpsmtest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Scope is the OAuth scope that Secret Manager requires.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// Audience is the audience of a self-signed JWT for Secret Manager.
const Audience = "https://secretmanager.googleapis.com/"

// The IAM permissions of Secret Manager that the server checks, one per
// RPC.
const (
	PermSecretsList     = "secretmanager.secrets.list"
	PermSecretsCreate   = "secretmanager.secrets.create"
	PermSecretsGet      = "secretmanager.secrets.get"
	PermSecretsUpdate   = "secretmanager.secrets.update"
	PermSecretsDelete   = "secretmanager.secrets.delete"
	PermVersionsAdd     = "secretmanager.versions.add"
	PermVersionsList    = "secretmanager.versions.list"
	PermVersionsGet     = "secretmanager.versions.get"
	PermVersionsAccess  = "secretmanager.versions.access"
	PermVersionsDisable = "secretmanager.versions.disable"
	PermVersionsEnable  = "secretmanager.versions.enable"
	PermVersionsDestroy = "secretmanager.versions.destroy"
)

// RoleAdmin holds the permissions of roles/secretmanager.admin that the
// server checks: all of them. A new service account has them.
var RoleAdmin = []string{
	PermSecretsList, PermSecretsCreate, PermSecretsGet, PermSecretsUpdate, PermSecretsDelete,
	PermVersionsAdd, PermVersionsList, PermVersionsGet, PermVersionsAccess,
	PermVersionsDisable, PermVersionsEnable, PermVersionsDestroy,
}

var methodPerm = map[string]string{
	"ListSecrets":          PermSecretsList,
	"CreateSecret":         PermSecretsCreate,
	"GetSecret":            PermSecretsGet,
	"UpdateSecret":         PermSecretsUpdate,
	"DeleteSecret":         PermSecretsDelete,
	"AddSecretVersion":     PermVersionsAdd,
	"ListSecretVersions":   PermVersionsList,
	"GetSecretVersion":     PermVersionsGet,
	"AccessSecretVersion":  PermVersionsAccess,
	"DisableSecretVersion": PermVersionsDisable,
	"EnableSecretVersion":  PermVersionsEnable,
	"DestroySecretVersion": PermVersionsDestroy,
}

type account struct {
	email string
	kid   string
	key   *rsa.PrivateKey
	perms map[string]bool
}

type grant struct {
	email  string
	expiry time.Time
}

// keys is a process-wide pool of RSA keys, so that tests do not pay for
// generating one per service account.
var keys struct {
	mu   gosync.Mutex
	pool []*rsa.PrivateKey
}

func rsaKey(i int) (*rsa.PrivateKey, error) {
	keys.mu.Lock()
	defer keys.mu.Unlock()
	for len(keys.pool) <= i {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		keys.pool = append(keys.pool, k)
	}
	return keys.pool[i], nil
}

// ServiceAccountEmail returns the email of the service account name in the
// server's project.
func (s *Server) ServiceAccountEmail(name string) string {
	return name + "@" + s.opts.ProjectID + ".iam.gserviceaccount.com"
}

// ServiceAccountKey returns a JSON key of the service account name (its
// email is ServiceAccountEmail(name)), creating the account with every
// permission of RoleAdmin if it does not exist. The key's token_uri is
// the server's token endpoint and its project_id the server's project.
// Each account has its own RSA key; asking again returns the same key.
func (s *Server) ServiceAccountKey(name string) []byte {
	email := s.ServiceAccountEmail(name)
	s.mu.Lock()
	a := s.accounts[email]
	if a == nil {
		k, err := rsaKey(len(s.accounts))
		if err != nil {
			s.mu.Unlock()
			panic(fmt.Sprintf("gcpsmtest: generate an RSA key: %v", err))
		}
		id := make([]byte, 20)
		_, _ = rand.Read(id)
		a = &account{email: email, kid: hex.EncodeToString(id), key: k, perms: permSet(RoleAdmin)}
		s.accounts[email] = a
	}
	s.mu.Unlock()
	der, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		panic(fmt.Sprintf("gcpsmtest: encode an RSA key: %v", err))
	}
	b, _ := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  s.opts.ProjectID,
		"private_key_id":              a.kid,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   "1" + strings.Repeat("0", 20),
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   s.TokenURL(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	return b
}

// SetPermissions replaces the IAM permissions of the service account with
// email (as a custom role would grant them on the project). The account
// must exist (see ServiceAccountKey).
func (s *Server) SetPermissions(email string, perms ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[email]; a != nil {
		a.perms = permSet(perms)
	}
}

func permSet(perms []string) map[string]bool {
	m := make(map[string]bool, len(perms))
	for _, p := range perms {
		m[p] = true
	}
	return m
}

// RevokeTokens invalidates every access token granted so far; RPCs that
// carry one fail with UNAUTHENTICATED.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// verifyJWT checks an RS256 JWT signed by one of the server's service
// accounts and returns its claims and the account.
func (s *Server) verifyJWT(tok string) (jwtClaims, *account, error) {
	var c jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, nil, errors.New("not a JWT")
	}
	var h jwtHeader
	if err := decodeSegment(parts[0], &h); err != nil {
		return c, nil, err
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return c, nil, err
	}
	if h.Alg != "RS256" {
		return c, nil, fmt.Errorf("alg %q is not RS256", h.Alg)
	}
	s.mu.Lock()
	a := s.accounts[c.Iss]
	s.mu.Unlock()
	if a == nil {
		return c, nil, errors.New("Invalid email or User ID")
	}
	if h.Kid != "" && h.Kid != a.kid {
		return c, nil, errors.New("Invalid JWT Signature.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&a.key.PublicKey, crypto.SHA256, sum[:], sig) != nil {
		return c, nil, errors.New("Invalid JWT Signature.")
	}
	now := s.opts.Now().Unix()
	if c.Exp <= now || c.Iat > now+300 || c.Exp-c.Iat > 3600+60 {
		return c, nil, errors.New("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	}
	return c, a, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("malformed JWT: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed JWT: %w", err)
	}
	return nil
}

func hasScope(scopes, want string) bool {
	return slices.Contains(strings.Fields(scopes), want)
}

// serveToken is the OAuth 2.0 token endpoint: the JWT-bearer grant of
// RFC 7523, as Google's https://oauth2.googleapis.com/token serves it.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts["Token"]++
	var injected int
	if len(s.tokFault) > 0 {
		injected, s.tokFault = s.tokFault[0], s.tokFault[1:]
	}
	s.mu.Unlock()
	if injected != 0 {
		oauthError(w, injected, "internal_failure", "gcpsmtest: injected failure")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("Invalid grant_type: %s", gt))
		return
	}
	c, a, err := s.verifyJWT(r.PostForm.Get("assertion"))
	switch {
	case err != nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
		return
	case c.Aud != s.TokenURL():
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: Failed audience check.")
		return
	case !hasScope(c.Scope, Scope):
		oauthError(w, http.StatusBadRequest, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "ya29.gcpsmtest-" + base64.RawURLEncoding.EncodeToString(b)
	const lifetime = 3599
	s.mu.Lock()
	s.tokens[tok] = grant{email: a.email, expiry: s.opts.Now().Add(lifetime * time.Second)}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": lifetime, "token_type": "Bearer"})
}

func oauthError(w http.ResponseWriter, code int, kind, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": kind, "error_description": desc})
}

// authenticate returns the service account that the authorization
// metadata identifies: an access token from the token endpoint, or a
// self-signed JWT of the account's key for Secret Manager.
func (s *Server) authenticate(authz string) (email string, selfSigned bool, err error) {
	const missing = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	const invalid = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if authz == "" || !ok || tok == "" {
		return "", false, statusErr(codes.Unauthenticated, missing)
	}
	s.mu.Lock()
	g, ok := s.tokens[tok]
	s.mu.Unlock()
	if ok {
		if !s.opts.Now().Before(g.expiry) {
			return "", false, statusErr(codes.Unauthenticated, invalid)
		}
		return g.email, false, nil
	}
	if strings.Count(tok, ".") == 2 {
		c, a, err := s.verifyJWT(tok)
		if err == nil && c.Sub == c.Iss && (c.Aud == Audience || c.Aud == "" && hasScope(c.Scope, Scope)) {
			return a.email, true, nil
		}
	}
	return "", false, statusErr(codes.Unauthenticated, invalid)
}

// authorize checks that the account holds the permission of the RPC.
func (s *Server) authorize(email, method string, req any) error {
	perm, ok := methodPerm[method]
	if !ok {
		return nil
	}
	s.mu.Lock()
	a := s.accounts[email]
	allowed := a != nil && a.perms[perm]
	s.mu.Unlock()
	if allowed {
		return nil
	}
	return statusErr(codes.PermissionDenied, fmt.Sprintf("Permission '%s' denied for resource '%s' (or it may not exist).", perm, resourceOf(req)))
}

// resourceOf returns the resource an RPC names, for error messages.
func resourceOf(req any) string {
	switch r := req.(type) {
	case interface{ GetParent() string }:
		return r.GetParent()
	case interface{ GetName() string }:
		return r.GetName()
	case *secretmanagerpb.UpdateSecretRequest:
		return r.GetSecret().GetName()
	}
	return ""
}

func metadataOf(ctx context.Context) func(string) string {
	md, _ := metadata.FromIncomingContext(ctx)
	return func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
}

func statusErr(c codes.Code, msg string) error { return status.Error(c, msg) }

func codeOf(err error) codes.Code { return status.Code(err) }
