// Package gcpsmtest is a local Google Cloud Secret Manager for tests: a
// gRPC server on loopback, over TLS, that speaks the
// google.cloud.secretmanager.v1.SecretManagerService protocol as the
// official Go SDK (cloud.google.com/go/secretmanager/apiv1) sends it, with
// an OAuth 2.0 token endpoint for service-account keys.
//
// Point the SDK at it with [Server.ClientOptions] (the endpoint and a TLS
// configuration that trusts the server's certificate) and authenticate
// with a key from [Server.ServiceAccountKey]: its token_uri is the
// server's own token endpoint, which grants access tokens for signed
// JWT-bearer assertions exactly as oauth2.googleapis.com does, and every
// RPC must carry one of them (or a self-signed JWT of the key) in its
// "authorization: Bearer" metadata. [Server.HTTPClient] trusts the server
// for those token requests.
//
// # What is modelled
//
// Secrets (labels, annotations, automatic or user-managed replication,
// etags that change on every modification), versions (numbered from 1 in
// order of creation, ENABLED, DISABLED or DESTROYED; "latest" is the most
// recently created one), payloads with CRC32C checks, pagination with
// opaque page tokens, List filters over name, labels and state, IAM
// permissions per service account, and the service's limits: secret IDs
// of 1 to 255 letters, digits, '-' and '_'; payloads of 1 byte to 64 KiB;
// at most 64 labels, keys and values as the API reference defines them.
// Errors carry the gRPC codes that Secret Manager answers with, and names
// in responses use the project number, as Google's do.
//
// Regional secrets (projects/*/locations/*), version aliases, rotation,
// Pub/Sub topics, expiry and IAM policy RPCs are not modelled.
//
// # Helpers for tests
//
// Besides the RPCs, a test can change secrets as another writer would
// ([Server.Put], [Server.AddVersion], [Server.Delete],
// [Server.SetVersionState]), read them ([Server.Value], [Server.Labels],
// [Server.Versions]), count requests per RPC ([Server.Count]), make the
// next requests fail ([Server.FailNext], [Server.FailTokenNext]) or slow
// ([Server.SetDelay]), and restrict a service account's permissions
// ([Server.SetPermissions]).
//
// A Server is safe for concurrent use.
package gcpsmtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// ProjectID is the project the server holds; default "test-project".
	ProjectID string
	// ProjectNumber is the project's number, which names in responses
	// use; default 271828182845.
	ProjectNumber int64
	// MaxPageSize caps the page size of List RPCs, whatever the client
	// asks for; 0 means 25000, the service's own cap. A small value makes
	// every listing span several pages.
	MaxPageSize int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server is a local Secret Manager. Create it with NewServer and stop it
// with Close.
type Server struct {
	opts Options
	hs   *httptest.Server
	gs   *grpc.Server
	pool *x509.CertPool

	mu       gosync.Mutex
	secrets  map[string]*secret // by secret ID
	seq      int64              // creation order of secrets
	accounts map[string]*account
	tokens   map[string]grant // access token → grant
	counts   map[string]int
	faults   []fault
	tokFault []int // HTTP statuses for the next token requests
	delay    time.Duration
	log      []Call
	before   func(method string, req proto.Message)
	corrupt  int // AccessSecretVersion answers to send with a wrong checksum
}

// Call is one RPC the server received, for tests that assert the
// protocol.
type Call struct {
	// Method is the RPC's name, for example "AddSecretVersion".
	Method string
	// Authorization is the "authorization" metadata as sent.
	Authorization string
	// Principal is the service account the credential identified, or ""
	// when it was missing or invalid.
	Principal string
	// SelfSignedJWT reports that the bearer token was a self-signed JWT
	// rather than an access token from the token endpoint.
	SelfSignedJWT bool
	// RequestParams is the "x-goog-request-params" metadata (the routing
	// header the SDK sends).
	RequestParams string
	// Code is the status code of the answer.
	Code codes.Code
}

type fault struct {
	method string // "" for any RPC
	code   codes.Code
	msg    string
}

// NewServer starts a Server on a loopback port.
// A nil options means the zero Options.
func NewServer(options *Options) (*Server, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	if opts.ProjectID == "" {
		opts.ProjectID = "test-project"
	}
	if opts.ProjectNumber == 0 {
		opts.ProjectNumber = 271828182845
	}
	if opts.MaxPageSize <= 0 || opts.MaxPageSize > maxPageSize {
		opts.MaxPageSize = maxPageSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:     opts,
		secrets:  map[string]*secret{},
		accounts: map[string]*account{},
		tokens:   map[string]grant{},
		counts:   map[string]int{},
	}
	s.gs = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	secretmanagerpb.RegisterSecretManagerServiceServer(s.gs, &service{s: s})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.serveToken)
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	s.hs.EnableHTTP2 = true
	s.hs.StartTLS()
	s.pool = x509.NewCertPool()
	s.pool.AddCert(s.hs.Certificate())
	return s, nil
}

// Close stops the server.
func (s *Server) Close() {
	s.hs.Close()
	s.gs.Stop()
}

// ProjectID returns the project the server holds.
func (s *Server) ProjectID() string { return s.opts.ProjectID }

// ProjectNumber returns the number of the project the server holds.
func (s *Server) ProjectNumber() int64 { return s.opts.ProjectNumber }

// Endpoint returns the gRPC endpoint, "127.0.0.1:port", for
// option.WithEndpoint.
func (s *Server) Endpoint() string { return strings.TrimPrefix(s.hs.URL, "https://") }

// TokenURL returns the URL of the OAuth 2.0 token endpoint, the token_uri
// of the server's service-account keys.
func (s *Server) TokenURL() string { return s.hs.URL + "/token" }

// CertPool returns a pool that holds the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// HTTPClient returns an HTTP client that trusts the server's certificate,
// for token requests.
func (s *Server) HTTPClient() *http.Client { return s.hs.Client() }

// TransportCredentials returns gRPC transport credentials that trust the
// server's certificate.
func (s *Server) TransportCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12})
}

// ClientOptions returns the options that point the SDK's gRPC client at
// the server: its endpoint, and TLS that trusts its certificate. Add
// credentials: a key from ServiceAccountKey.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Endpoint()),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(s.TransportCredentials())),
	}
}

// Count returns how many RPCs named method (for example "GetSecret") the
// server received, failed ones included; "Token" counts token requests.
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

// Counts returns the number of requests received per RPC name (and
// "Token").
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// Total returns the number of RPCs received (token requests excluded).
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for m, c := range s.counts {
		if m != "Token" {
			n += c
		}
	}
	return n
}

// ResetCounts sets every request counter to zero and clears the call log.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.log = nil
}

// maxLog is how many calls the log keeps (the latest).
const maxLog = 10000

// Calls returns the RPCs received since the start or the last
// ResetCounts, in order (at most the latest 10000).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// FailNext makes the next n RPCs named method ("" for any RPC) fail with
// code, before they are applied.
func (s *Server) FailNext(method string, n int, code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := fmt.Sprintf("gcpsmtest: injected %s", code)
	switch code {
	case codes.Unavailable:
		msg = "The service is currently unavailable."
	case codes.ResourceExhausted:
		msg = "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute' of service 'secretmanager.googleapis.com'."
	case codes.Internal:
		msg = "Internal error encountered."
	}
	for range n {
		s.faults = append(s.faults, fault{method: method, code: code, msg: msg})
	}
}

// FailTokenNext makes the next n token requests fail with the HTTP
// status.
func (s *Server) FailTokenNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.tokFault = append(s.tokFault, status)
	}
}

// SetDelay makes every RPC wait d before it is served (or until the
// client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// BeforeRPC sets a function that the server calls with every
// authenticated and authorized RPC just before serving it (nil removes
// it), so that a test can act as another writer at that instant. The
// request must not be modified.
func (s *Server) BeforeRPC(fn func(method string, req proto.Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = fn
}

// CorruptChecksums makes the next n AccessSecretVersion answers carry a
// data_crc32c that does not match their data, as a payload corrupted in
// transit would.
func (s *Server) CorruptChecksums(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt += n
}

// intercept authenticates, authorizes, counts and logs every RPC, and
// applies the injected faults and delay.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
	call := Call{Method: method}
	md := metadataOf(ctx)
	call.Authorization = md("authorization")
	call.RequestParams = md("x-goog-request-params")

	s.mu.Lock()
	s.counts[method]++
	delay := s.delay
	var injected *fault
	for i, f := range s.faults {
		if f.method == "" || f.method == method {
			injected = &f
			s.faults = slices.Delete(s.faults, i, i+1)
			break
		}
	}
	s.mu.Unlock()

	resp, err := func() (any, error) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, statusErr(codes.DeadlineExceeded, "Deadline expired before operation could complete.")
			}
		}
		principal, selfSigned, err := s.authenticate(call.Authorization)
		call.Principal, call.SelfSignedJWT = principal, selfSigned
		if err != nil {
			return nil, err
		}
		if injected != nil {
			return nil, statusErr(injected.code, injected.msg)
		}
		if err := s.authorize(principal, method, req); err != nil {
			return nil, err
		}
		s.mu.Lock()
		before := s.before
		s.mu.Unlock()
		if m, ok := req.(proto.Message); ok && before != nil {
			before(method, m)
		}
		return handler(ctx, req)
	}()
	call.Code = codeOf(err)
	s.mu.Lock()
	if len(s.log) >= maxLog {
		s.log = slices.Delete(s.log, 0, len(s.log)-maxLog+1)
	}
	s.log = append(s.log, call)
	s.mu.Unlock()
	return resp, err
}
