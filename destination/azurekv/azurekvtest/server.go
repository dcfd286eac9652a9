// Package azurekvtest is a fake Azure Key Vault (its secrets API) and a fake
// Microsoft Entra token endpoint on one loopback HTTPS server, for tests of
// code that uses the official Azure SDK for Go
// (github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets with
// github.com/Azure/azure-sdk-for-go/sdk/azidentity), such as package
// destination/azurekv.
//
// # What it speaks
//
// The server answers the requests the SDK sends, as Key Vault answers them
// (azsecrets v1.5 sends api-version 2026-04-01; the server accepts any, and
// Log shows which arrived):
//
//   - The bearer challenge. A request without a valid token gets 401 with
//     WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
//     resource="https://vault.azure.net" (vault.azure.cn and
//     vault.usgovcloudapi.net for vaults of those clouds), as Key Vault's
//     does; the SDK sends its first request without a token to elicit it.
//   - Microsoft Entra, as MSAL asks it: the OpenID configuration of the
//     tenant (/<tenant>/v2.0/.well-known/openid-configuration), instance
//     discovery (/common/discovery/instance) for hosts MSAL does not know,
//     and the token endpoint (/<tenant>/oauth2/v2.0/token) with the client
//     credentials grant: tenant, client id, client secret and scope
//     (<resource>/.default) are checked, and Entra's error shapes
//     (AADSTS codes) returned.
//   - Secrets: PUT /secrets/{name} (a new version each time), GET
//     /secrets/{name}/{version} (empty version: the latest), GET /secrets
//     and GET /secrets/{name}/versions (paged with nextLink and
//     $skiptoken, maxresults up to 25), PATCH /secrets/{name}/{version},
//     DELETE /secrets/{name} (soft delete), GET /deletedsecrets and
//     /deletedsecrets/{name}, POST /deletedsecrets/{name}/recover, DELETE
//     /deletedsecrets/{name} (purge).
//   - Key Vault's limits and errors: names of 1 to 127 letters, digits and
//     '-', compared without regard to case (the first writer's spelling is
//     kept); values up to 25 KiB; at most 15 tags, names up to 512 and
//     values up to 256 characters; contentType up to 255. Errors have Key
//     Vault's body, {"error":{"code":...,"message":...,"innererror":...}}:
//     400 BadParameter, 401 Unauthorized, 403 Forbidden (a missing
//     access-policy permission, see SetPermissions; a disabled secret), 404
//     SecretNotFound, 409 Conflict (ObjectIsDeletedButRecoverable,
//     ObjectIsBeingDeleted, ObjectIsBeingRecovered), 429 Throttled with
//     Retry-After (see FailNext).
//   - Soft delete as Key Vault does it, asynchronously: Options.DeleteDelay,
//     RecoverDelay and PurgeDelay make a delete, recovery or purge take
//     that long, during which the name is in between states (a recovered
//     secret reads as not found until its recovery completes; a name being
//     purged cannot be written yet), so that clients must poll as they
//     must with Key Vault.
//
// Versions are 32 hexadecimal digits, random, and listed in the order of
// their ids, as Key Vault lists them (not by time); creation and update
// times have Key Vault's resolution of one second.
//
// # Reaching it
//
// The server answers for every host name: HTTPClient returns a client
// that dials the server whatever the host, and trusts its certificate,
// which is valid for the vault and Entra host names of the public, China
// and US Government clouds. Give that client to the SDK (as the transport
// of azcore.ClientOptions, for both the secrets client and the credential)
// and use VaultURL: the SDK then runs unchanged, challenge resource
// verification and Entra authority validation included, and nothing
// leaves the loopback interface.
//
// # Tests
//
// Set, Get, Versions, Delete, Deleted, Purge and SetEnabled change and read
// the vault out of band, as another writer would. Count and Log tell which
// requests arrived; FailNext, SetLatency, OnRequest and SetPermissions
// inject faults, races and missing permissions. A Server is safe for
// concurrent use.
package azurekvtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"
)

// Defaults of Options.
const (
	DefaultVaultName    = "fakevault"
	DefaultTenantID     = "8a3f0c5e-1d2b-4c6a-9e7f-0b1c2d3e4f50"
	DefaultClientID     = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a10"
	DefaultClientSecret = "azurekvtest-client-secret"
)

// Operations, as Count and Log name them.
const (
	OpSetSecret          = "SetSecret"
	OpGetSecret          = "GetSecret"
	OpListSecrets        = "ListSecrets"        // one per page
	OpListVersions       = "ListSecretVersions" // one per page
	OpUpdateSecret       = "UpdateSecret"
	OpDeleteSecret       = "DeleteSecret"
	OpGetDeletedSecret   = "GetDeletedSecret"
	OpListDeletedSecrets = "ListDeletedSecrets" // one per page
	OpRecoverSecret      = "RecoverDeletedSecret"
	OpPurgeSecret        = "PurgeDeletedSecret"
	// OpChallenge counts the vault requests answered with the bearer
	// challenge (401) because they carried no valid token; they are not
	// counted under their own operation.
	OpChallenge = "Challenge"
	// Microsoft Entra requests.
	OpToken             = "Token"
	OpOpenIDConfig      = "OpenIDConfiguration"
	OpInstanceDiscovery = "InstanceDiscovery"
	// OpUnknown counts requests that match no operation.
	OpUnknown = "Unknown"
)

// Key Vault access-policy permissions on secrets, for SetPermissions.
const (
	PermGet     = "get"
	PermList    = "list"
	PermSet     = "set"
	PermDelete  = "delete"
	PermRecover = "recover"
	PermPurge   = "purge"
)

// Key Vault's limits.
const (
	MaxNameLength        = 127
	MaxValueBytes        = 25 * 1024
	MaxTags              = 15
	MaxTagNameLength     = 512
	MaxTagValueLength    = 256
	MaxContentTypeLength = 255
	MaxPageSize          = 25
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// VaultName is the vault's name, the first label of VaultURL's host;
	// default DefaultVaultName.
	VaultName string
	// TenantID, ClientID and ClientSecret are the only credentials the
	// token endpoint accepts; defaults DefaultTenantID, DefaultClientID
	// and DefaultClientSecret.
	TenantID, ClientID, ClientSecret string
	// PageSize is the number of items per page of a list when the request
	// has no maxresults; default and maximum MaxPageSize.
	PageSize int
	// TokenLifetime is how long an access token is valid; default one
	// hour, as Entra's.
	TokenLifetime time.Duration
	// DeleteDelay, RecoverDelay and PurgeDelay are how long a soft delete,
	// a recovery and a purge take to complete; zero completes them at
	// once.
	DeleteDelay, RecoverDelay, PurgeDelay time.Duration
	// RecoverableDays is the vault's soft-delete retention, 7 to 90 days;
	// default 90.
	RecoverableDays int
	// PurgeProtection makes the vault refuse purges (403), as a vault with
	// purge protection does.
	PurgeProtection bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Server is a fake Key Vault and Entra on loopback HTTPS. See the package
// documentation.
type Server struct {
	opts Options
	ts   *httptest.Server
	pool *x509.CertPool
	cert *x509.Certificate

	mu      gosync.Mutex
	secrets map[string]*secret // by lower-case name
	tokens  map[string]token
	counts  map[string]int
	log     []Request
	faults  []fault
	latency time.Duration
	hook    func(op, name string)
	perms   map[string]bool // nil: every permission
}

// Request is one request the server received, as Log shows it.
type Request struct {
	Op     string // one of the Op constants
	Method string
	Host   string
	Path   string // the URL path, without the query
	// Name is the secret's name in the path, if any.
	Name string
	// APIVersion is the api-version query parameter of a vault request.
	APIVersion string
	// Authorized reports whether a vault request carried a valid token
	// (always false for Entra requests).
	Authorized bool
	Status     int
}

// Fault is a failure that FailNext injects.
type Fault struct {
	// Op limits the fault to requests of this operation; empty means any
	// authorized vault request.
	Op string
	// Status is the answer's status: 429 (Throttled, with Retry-After) or
	// a 5xx; 0 means 500.
	Status int
	// RetryAfter is sent as the Retry-After header (whole seconds,
	// rounded up) with a 429 or 503; zero sends none.
	RetryAfter time.Duration
}

type fault struct {
	Fault
	n int
}

type token struct {
	audience string
	expires  time.Time
}

// Start starts a Server; Close stops it.
// A nil options means the zero Options.
func Start(options *Options) (*Server, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	opts.VaultName = cmp.Or(opts.VaultName, DefaultVaultName)
	opts.TenantID = cmp.Or(opts.TenantID, DefaultTenantID)
	opts.ClientID = cmp.Or(opts.ClientID, DefaultClientID)
	opts.ClientSecret = cmp.Or(opts.ClientSecret, DefaultClientSecret)
	if opts.PageSize <= 0 || opts.PageSize > MaxPageSize {
		opts.PageSize = MaxPageSize
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.RecoverableDays == 0 {
		opts.RecoverableDays = 90
	}
	if opts.RecoverableDays < 7 || opts.RecoverableDays > 90 {
		return nil, fmt.Errorf("azurekvtest: RecoverableDays %d is not between 7 and 90", opts.RecoverableDays)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !validName(opts.VaultName) || len(opts.VaultName) > 24 {
		return nil, fmt.Errorf("azurekvtest: %q is not a vault name", opts.VaultName)
	}
	cert, leaf, err := newCertificate(time.Now())
	if err != nil {
		return nil, fmt.Errorf("azurekvtest: certificate: %w", err)
	}
	s := &Server{
		opts:    opts,
		cert:    leaf,
		pool:    x509.NewCertPool(),
		secrets: map[string]*secret{},
		tokens:  map[string]token{},
		counts:  map[string]int{},
	}
	s.pool.AddCert(leaf)
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.ts.EnableHTTP2 = true
	s.ts.StartTLS()
	return s, nil
}

// New starts a Server that is closed when the test ends.
// A nil options means the zero Options.
func New(t testing.TB, options *Options) *Server {
	var opts Options
	if options != nil {
		opts = *options
	}
	t.Helper()
	s, err := Start(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and closes its connections.
func (s *Server) Close() { s.ts.Close() }

// VaultURL returns the vault's URL in the public cloud,
// https://<VaultName>.vault.azure.net, to be reached with HTTPClient.
func (s *Server) VaultURL() string { return "https://" + s.opts.VaultName + ".vault.azure.net" }

// VaultURLIn returns the vault's URL in a cloud: "" or "AzurePublic",
// "AzureChina" (vault.azure.cn) or "AzureUSGovernment"
// (vault.usgovcloudapi.net).
func (s *Server) VaultURLIn(cloud string) string {
	switch strings.ToLower(cloud) {
	case "azurechina", "azurechinacloud":
		return "https://" + s.opts.VaultName + ".vault.azure.cn"
	case "azureusgovernment", "azureusgovernmentcloud", "azuregovernment":
		return "https://" + s.opts.VaultName + ".vault.usgovcloudapi.net"
	}
	return s.VaultURL()
}

// LoopbackURL returns the server's own address, https://127.0.0.1:<port>.
// A client that uses it as the vault URL must disable the SDK's challenge
// resource verification (the challenge names vault.azure.net).
func (s *Server) LoopbackURL() string { return s.ts.URL }

// Certificate returns the server's self-signed certificate.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// HTTPClient returns a client that sends every request to the server
// whatever its host, over TLS that trusts the server's certificate (and
// only it). Each call returns a new client with its own connections.
func (s *Server) HTTPClient() *http.Client {
	addr := s.ts.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// TenantID returns the tenant the server issues tokens for.
func (s *Server) TenantID() string { return s.opts.TenantID }

// ClientID returns the client id the token endpoint accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the client secret the token endpoint accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Count returns how many requests of operation op (an Op constant) the
// server received.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[op]
}

// Counts returns the number of requests per operation.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// VaultRequests returns the number of vault requests (every operation but
// Entra's), challenged ones included.
func (s *Server) VaultRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for op, c := range s.counts {
		switch op {
		case OpToken, OpOpenIDConfig, OpInstanceDiscovery:
		default:
			n += c
		}
	}
	return n
}

// ResetCounts sets every count to zero and empties the log.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.log = nil
}

// Log returns the requests received since the start or the last
// ResetCounts, in order of arrival.
func (s *Server) Log() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// FailNext makes the next n authorized vault requests (of f.Op, when set)
// fail with f.Status, before they change anything.
func (s *Server) FailNext(n int, f Fault) {
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{Fault: f, n: n})
}

// SetLatency delays every answer by d (zero: none); a client's deadline
// or cancellation ends its wait.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// OnRequest sets a function called for each authorized vault request,
// with its operation and secret name, before the request is handled and
// without any lock held: it may change the vault out of band (Set,
// Delete) to play a concurrent writer. Nil removes it.
func (s *Server) OnRequest(fn func(op, name string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = fn
}

// SetPermissions sets the access-policy permissions of the client on
// secrets (PermGet, PermList and the others); a request that needs
// another gets 403 Forbidden, as from Key Vault. With none, every
// permission is granted (the default).
func (s *Server) SetPermissions(perms ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(perms) == 0 {
		s.perms = nil
		return
	}
	s.perms = map[string]bool{}
	for _, p := range perms {
		s.perms[p] = true
	}
}

// newID returns a random 32-digit hexadecimal id, as Key Vault's versions.
func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40 // a version 4 UUID without dashes, as Key Vault's
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b)
}

// ErrNotFound is returned by the out-of-band helpers for a secret that is
// not there (in the state they need).
var ErrNotFound = errors.New("azurekvtest: secret not found")
