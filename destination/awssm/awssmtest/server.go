// Package awssmtest is a local AWS Secrets Manager for tests: an HTTP
// server on the loopback interface that speaks the service's wire
// protocol (AWS JSON 1.1, POST with an X-Amz-Target header, SigV4-signed)
// as the official SDK, github.com/aws/aws-sdk-go-v2/service/secretsmanager,
// sends it, and keeps its secrets in memory.
//
// Point the SDK at it with its BaseEndpoint option and the server's static
// credentials (Server.Client does both):
//
//	srv := awssmtest.NewServer(awssmtest.Options{})
//	defer srv.Close()
//	client := srv.Client()
//	out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/db"), SecretString: aws.String("s3cr3t")})
//
// # What it models
//
// The operations CreateSecret, PutSecretValue, GetSecretValue,
// BatchGetSecretValue, DescribeSecret, ListSecrets, ListSecretVersionIds,
// DeleteSecret, RestoreSecret, TagResource and UntagResource, with:
//
//   - versions and staging labels: each new version takes AWSCURRENT, and
//     the version it took it from gets AWSPREVIOUS; versions without a
//     label are deprecated and are pruned beyond Options.MaxVersions when
//     older than 24 hours (a write that would exceed the quota otherwise
//     gets LimitExceededException);
//   - idempotency: a ClientRequestToken that names an existing version
//     with the same value is a no-op that returns that version; with a
//     different value it is ResourceExistsException;
//   - deletion: with a recovery window (7 to 30 days, 30 by default) the
//     secret is only scheduled for deletion (DeletedDate); it cannot be
//     read or written (InvalidRequestException), its name cannot be
//     reused until it is restored (RestoreSecret) or purged, and
//     ListSecrets leaves it out unless IncludePlannedDeletion is set;
//     ForceDeleteWithoutRecovery removes it at once; both together are
//     refused;
//   - limits: names of 1 to 512 letters, digits and /_+=.@-; SecretString
//     of 1 to 65,536 bytes; up to 50 tags per secret, keys of 1 to 128 and
//     values of up to 256 characters, the aws: prefix reserved;
//     BatchGetSecretValue takes up to 20 ids; page sizes as documented;
//   - filters of ListSecrets and BatchGetSecretValue (name, tag-key,
//     tag-value, description, all; prefix matches, '!' for negation),
//     pagination by NextToken, and pages that may be shorter than
//     MaxResults (Options.MaxPageSize), as AWS allows;
//   - errors in the AWS JSON protocol's shape ("__type" and a message),
//     so that the SDK maps them to its typed errors
//     (types.ResourceNotFoundException and the rest); ThrottlingException
//     is answered with status 400 and retried by the SDK;
//   - SigV4: every request must be signed with one of the server's
//     access keys (Options.AccessKeyID, or one of NewAccessKey), for its
//     region and the secretsmanager service; the signature is verified;
//   - IAM: each access key has an identity-based policy (Allow,
//     SetPolicy; by default every action is allowed). A request the
//     policy does not allow gets AccessDeniedException (status 400) with
//     AWS's message, "User: arn:aws:iam::ACCOUNT:user/NAME is not
//     authorized to perform: secretsmanager:ACTION on resource: ID
//     because no identity-based policy allows the secretsmanager:ACTION
//     action" (or "with an explicit deny in an identity-based policy");
//     the SDK has no type for it, so it is a smithy.APIError with that
//     code, which the SDK does not retry.
//
// # IAM
//
// An operation needs the action of its name ("secretsmanager:" + Op), as
// the API reference states, and also: CreateSecret with Tags needs
// secretsmanager:TagResource; BatchGetSecretValue needs
// secretsmanager:GetSecretValue on each secret it reads (a secret denied
// is reported in its Errors as AccessDeniedException, the others are
// read) and, with Filters, secretsmanager:ListSecrets. ListSecrets and
// BatchGetSecretValue take no resource (only a statement whose Resource
// matches "*" allows them); the others take the secret's ARN
// (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx; for
// CreateSecret, or a name that does not exist, the ARN it would get). The
// policy is evaluated as IAM evaluates one identity-based policy: an
// explicit Deny wins, then any Allow; Action patterns ignore case, and
// '*' and '?' are wildcards in Action, Resource and StringLike. Conditions
// can use the operators StringEquals, StringNotEquals, StringLike,
// StringNotLike and Null on the keys aws:RequestTag/KEY (the tags of
// CreateSecret and TagResource), aws:ResourceTag/KEY and
// secretsmanager:ResourceTag/KEY (the tags of the existing secret; none
// for CreateSecret); a key absent from the request matches only the
// negated operators and Null. SetPolicy refuses any other element,
// operator or key (NotAction, Principal, aws:TagKeys, ForAllValues:...)
// rather than read it otherwise than IAM would. Resource policies,
// permission boundaries, sessions and KMS are not modelled.
//
// Secret values are never logged, counted or put in an error.
//
// # Helpers for tests
//
// Put, Delete and Get change and read secrets out of band, as another
// writer would; Count and Requests tell which operations the server
// served (with the ClientRequestToken each carried); Inject makes the next
// requests fail (500, throttling, a response lost after the change was
// made), wait, or meet a change made by another writer just before them;
// NewAccessKey, Allow and SetPolicy give a caller a restricted policy.
//
// A Server is safe for concurrent use.
package awssmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Defaults of Options.
const (
	DefaultRegion          = "us-east-1"
	DefaultAccountID       = "123456789012"
	DefaultAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	DefaultSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	// DefaultMaxVersions is how many versions of a secret AWS keeps.
	DefaultMaxVersions = 100
)

// Limits of the service, as the API reference states them.
const (
	MaxNameLength        = 512
	MaxSecretStringBytes = 65536
	MaxTags              = 50
	MaxTagKeyLength      = 128
	MaxTagValueLength    = 256
	MaxBatchSecretIDs    = 20
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Region and AccountID appear in ARNs and in the credential scope
	// that requests must be signed for; defaults DefaultRegion and
	// DefaultAccountID.
	Region    string
	AccountID string
	// AccessKeyID and SecretAccessKey are the access key of the IAM user
	// DefaultUser, allowed every action (see Allow); defaults
	// DefaultAccessKeyID and DefaultSecretAccessKey. NewAccessKey adds
	// others.
	AccessKeyID     string
	SecretAccessKey string
	// Now returns the server's time (CreatedDate, DeletedDate, the end of
	// recovery windows, version pruning); nil means time.Now.
	Now func() time.Time
	// MaxVersions is how many versions a secret keeps before the oldest
	// deprecated ones are pruned; 0 means DefaultMaxVersions.
	MaxVersions int
	// MaxPageSize, when positive, caps the pages of ListSecrets,
	// ListSecretVersionIds and BatchGetSecretValue below the MaxResults
	// the client asked for, as AWS may do.
	MaxPageSize int
}

// Server is a local AWS Secrets Manager. Create it with NewServer.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:port), for the SDK's
	// BaseEndpoint option.
	URL string

	opts Options
	hs   *httptest.Server

	mu      gosync.Mutex
	secrets map[string]*secret // by name, including those scheduled for deletion
	seq     uint64
	counts  map[string]int
	log     []Request
	faults  []*Fault
	keys    map[string]*accessKey // by access key id
}

type secret struct {
	name, arn   string
	description string
	seq         uint64 // creation order
	created     time.Time
	changed     time.Time
	deleted     time.Time // DeletedDate; zero unless scheduled for deletion
	purgeAt     time.Time // end of the recovery window
	tags        []tag
	versions    []*version // in creation order
}

type tag struct{ key, value string }

type version struct {
	id      string
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

// NewServer starts a Server on a loopback port. Close it when done.
// A nil options means the zero Options.
func NewServer(options *Options) *Server {
	var opts Options
	if options != nil {
		opts = *options
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = DefaultAccessKeyID
	}
	if opts.SecretAccessKey == "" {
		opts.SecretAccessKey = DefaultSecretAccessKey
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxVersions <= 0 {
		opts.MaxVersions = DefaultMaxVersions
	}
	s := &Server{opts: opts, secrets: map[string]*secret{}, counts: map[string]int{},
		keys: map[string]*accessKey{opts.AccessKeyID: {user: DefaultUser, secret: opts.SecretAccessKey}}}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL
	return s
}

// Close shuts the server down and waits for the requests in flight.
func (s *Server) Close() { s.hs.Close() }

// Region returns the region requests must be signed for.
func (s *Server) Region() string { return s.opts.Region }

// AccessKey returns Options.AccessKeyID and SecretAccessKey, the key that
// Client uses.
func (s *Server) AccessKey() (id, secret string) {
	return s.opts.AccessKeyID, s.opts.SecretAccessKey
}

// HTTPClient returns an HTTP client for the server (its connections go to
// the loopback interface only).
func (s *Server) HTTPClient() *http.Client { return s.hs.Client() }

// Client returns an SDK client for the server: its URL as BaseEndpoint,
// its region and static credentials, then optFns.
func (s *Server) Client(optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	opts := secretsmanager.Options{
		Region:       s.opts.Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(s.opts.AccessKeyID, s.opts.SecretAccessKey, ""),
		HTTPClient:   s.HTTPClient(),
	}
	return secretsmanager.New(opts, optFns...)
}

// Request is one request the server received, as Requests lists it. It
// holds no secret value.
type Request struct {
	// Op is the operation, from X-Amz-Target ("PutSecretValue").
	Op string
	// SecretID is the request's SecretId or Name, when it has one.
	SecretID string
	// ClientRequestToken is the request's token, when it has one.
	ClientRequestToken string
	// Status is the HTTP status of the answer, and ErrorType the error's
	// "__type" when it is not 200.
	Status    int
	ErrorType string
}

// Count returns how many requests of op the server received ("" counts
// every operation), whatever their outcome.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		n := 0
		for _, c := range s.counts {
			n += c
		}
		return n
	}
	return s.counts[op]
}

// Counts returns the number of requests per operation.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// ResetCounts forgets the counts and the request log.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = map[string]int{}
	s.log = nil
}

// Fault makes requests fail or wait; see Inject.
type Fault struct {
	// Op is the operation to fail ("PutSecretValue"); "" matches every
	// operation.
	Op string
	// Times is how many matching requests fail; 0 means 1.
	Times int
	// Status is the answer's HTTP status: 500 (the default) answers
	// InternalServiceError, 400 ThrottlingException, 503
	// ServiceUnavailable; ErrorType overrides the error's "__type".
	Status    int
	ErrorType string
	// AfterApply makes the server carry the request out before it answers
	// with the error, as when a response is lost: the client's retry then
	// meets the change it already made.
	AfterApply bool
	// Delay holds each matching request this long (or until the client
	// gives up) before it is served or failed. With Delay set and Status
	// 0, the request is only delayed.
	Delay time.Duration
	// Hook, when set, is called for each matching request before it is
	// served (and before Delay), without the server's lock held: it may
	// change the server with Put, Delete or SetTags, as another writer
	// racing the request would. With Hook set and Status 0, the request
	// is then served normally.
	Hook func()
}

// Inject adds a fault for the next matching requests. Faults apply in the
// order they were injected.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.Status == 0 && f.Delay == 0 && f.Hook == nil {
		f.Status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// takeFault returns the fault for a request of op, if any. s.mu is held.
func (s *Server) takeFault(op string) *Fault {
	for i, f := range s.faults {
		if f.Op != "" && f.Op != op {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		c := *f
		return &c
	}
	return nil
}

// Secret is a secret as Get shows it.
type Secret struct {
	Name, ARN   string
	Description string
	// Value is the SecretString of the AWSCURRENT version ("" when the
	// secret has none, or holds a SecretBinary, then in Binary).
	Value  string
	Binary []byte
	// VersionID is the AWSCURRENT version's id, PreviousVersionID the
	// AWSPREVIOUS one's.
	VersionID         string
	PreviousVersionID string
	// Versions counts every version kept, deprecated ones included.
	Versions int
	Tags     map[string]string
	// Deleted reports that the secret is scheduled for deletion, until
	// PurgeAt.
	Deleted bool
	PurgeAt time.Time
}

// Get returns the secret name, including one scheduled for deletion, as
// another reader would see it out of band.
func (s *Server) Get(name string) (Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	sec := s.secrets[name]
	if sec == nil {
		return Secret{}, false
	}
	out := Secret{Name: sec.name, ARN: sec.arn, Description: sec.description, Versions: len(sec.versions),
		Tags: map[string]string{}, Deleted: !sec.deleted.IsZero(), PurgeAt: sec.purgeAt}
	for _, t := range sec.tags {
		out.Tags[t.key] = t.value
	}
	if v := sec.stage(stageCurrent); v != nil {
		out.VersionID = v.id
		if v.str != nil {
			out.Value = *v.str
		}
		out.Binary = slices.Clone(v.bin)
	}
	if v := sec.stage(stagePrevious); v != nil {
		out.PreviousVersionID = v.id
	}
	return out, true
}

// Names returns the names of every secret, those scheduled for deletion
// included, sorted.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	names := make([]string, 0, len(s.secrets))
	for n := range s.secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Put writes value as a new AWSCURRENT version of the secret name, as
// another writer would with PutSecretValue, and returns the version's id.
// When name does not exist it is created with tags (a secret scheduled for
// deletion is first purged). Tags are ignored for an existing secret.
// Limits are not checked.
func (s *Server) Put(name, value string, tags map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	now := s.opts.Now()
	sec := s.secrets[name]
	if sec != nil && !sec.deleted.IsZero() {
		delete(s.secrets, name)
		sec = nil
	}
	if sec == nil {
		sec = s.newSecret(name, now)
		keys := make([]string, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sec.tags = append(sec.tags, tag{k, tags[k]})
		}
	}
	v := &version{id: newUUID(), str: &value, created: now}
	sec.addVersion(v, nil)
	sec.changed = now
	return v.id
}

// Delete deletes the secret name out of band: scheduled for deletion with
// a 30-day recovery window, or at once with force. It reports whether the
// secret existed.
func (s *Server) Delete(name string, force bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	sec := s.secrets[name]
	if sec == nil {
		return false
	}
	if force {
		delete(s.secrets, name)
		return true
	}
	now := s.opts.Now()
	sec.deleted, sec.purgeAt = now, now.AddDate(0, 0, 30)
	return true
}

// SetTags replaces the tags of the secret name out of band. It reports
// whether the secret exists.
func (s *Server) SetTags(name string, tags map[string]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge()
	sec := s.secrets[name]
	if sec == nil {
		return false
	}
	sec.tags = nil
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sec.tags = append(sec.tags, tag{k, tags[k]})
	}
	return true
}

// newSecret adds a secret. s.mu is held.
func (s *Server) newSecret(name string, now time.Time) *secret {
	s.seq++
	sec := &secret{
		name:    name,
		arn:     fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.opts.Region, s.opts.AccountID, name, randomSuffix()),
		seq:     s.seq,
		created: now,
		changed: now,
	}
	s.secrets[name] = sec
	return sec
}

// purge removes the secrets whose recovery window has ended. s.mu is held.
func (s *Server) purge() {
	now := s.opts.Now()
	for name, sec := range s.secrets {
		if !sec.deleted.IsZero() && !now.Before(sec.purgeAt) {
			delete(s.secrets, name)
		}
	}
}

// find resolves a SecretId: a name, a full ARN, or an ARN without its
// random suffix. s.mu is held.
func (s *Server) find(id string) *secret {
	if !strings.HasPrefix(id, "arn:") {
		return s.secrets[id]
	}
	for _, sec := range s.secrets {
		if sec.arn == id || sec.arn[:len(sec.arn)-7] == id {
			return sec
		}
	}
	return nil
}

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

func (sec *secret) stage(label string) *version {
	for _, v := range sec.versions {
		if slices.Contains(v.stages, label) {
			return v
		}
	}
	return nil
}

func (sec *secret) version(id string) *version {
	for _, v := range sec.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// addVersion adds v with the labels stages (nil: AWSCURRENT), moving each
// label from the version that had it, and AWSPREVIOUS to the version
// AWSCURRENT came from.
func (sec *secret) addVersion(v *version, stages []string) {
	if stages == nil {
		stages = []string{stageCurrent}
	}
	for _, label := range stages {
		if old := sec.stage(label); old != nil {
			old.stages = slices.DeleteFunc(old.stages, func(s string) bool { return s == label })
			if label == stageCurrent {
				if prev := sec.stage(stagePrevious); prev != nil {
					prev.stages = slices.DeleteFunc(prev.stages, func(s string) bool { return s == stagePrevious })
				}
				old.stages = append(old.stages, stagePrevious)
			}
		}
	}
	v.stages = slices.Clone(stages)
	sec.versions = append(sec.versions, v)
}

// prune drops the oldest deprecated versions older than a day while there
// are at least max versions, and reports whether one more version fits.
func (sec *secret) prune(max int, now time.Time) bool {
	for len(sec.versions) >= max {
		i := slices.IndexFunc(sec.versions, func(v *version) bool {
			return len(v.stages) == 0 && now.Sub(v.created) > 24*time.Hour
		})
		if i < 0 {
			return false
		}
		sec.versions = slices.Delete(sec.versions, i, i+1)
	}
	return true
}

func (sec *secret) labeled() map[string][]string {
	out := map[string][]string{}
	for _, v := range sec.versions {
		if len(v.stages) > 0 {
			out[v.id] = slices.Clone(v.stages)
		}
	}
	return out
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomSuffix() string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b[:])
}

// wait sleeps for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
