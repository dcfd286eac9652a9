package gcpsmtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits of Secret Manager.
const (
	// MaxPayload is the largest payload of a version, in bytes.
	MaxPayload = 64 << 10
	// MaxSecretID is the longest secret ID.
	MaxSecretID = 255
	// MaxLabels is the most labels a secret can have.
	MaxLabels   = 64
	maxPageSize = 25000
)

var (
	secretIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	labelKeyPattern = regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`)
	labelValPattern = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type secret struct {
	id          string
	seq         int64
	created     time.Time
	labels      map[string]string
	annotations map[string]string
	replication *secretmanagerpb.Replication
	etag        string
	versions    []*version // versions[i] is number i+1
}

type version struct {
	n         int64
	data      []byte
	crc       uint32
	clientCRC bool
	state     secretmanagerpb.SecretVersion_State
	created   time.Time
	destroyed time.Time
	etag      string
}

func newEtag() string {
	b := make([]byte, 7)
	_, _ = rand.Read(b)
	return `"` + hex.EncodeToString(b) + `"`
}

// service implements the RPCs over the Server's state.
type service struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	s *Server
}

func (s *Server) projectName() string {
	return "projects/" + strconv.FormatInt(s.opts.ProjectNumber, 10)
}

func (s *Server) secretName(id string) string { return s.projectName() + "/secrets/" + id }

func (s *Server) versionName(id string, n int64) string {
	return s.secretName(id) + "/versions/" + strconv.FormatInt(n, 10)
}

// checkProject checks "projects/P" for the server's project, by ID or
// number.
func (s *Server) checkProject(p, resource, perm string) error {
	if p == s.opts.ProjectID || p == strconv.FormatInt(s.opts.ProjectNumber, 10) {
		return nil
	}
	return statusErr(codes.PermissionDenied, fmt.Sprintf("Permission '%s' denied for resource '%s' (or it may not exist).", perm, resource))
}

func (s *Server) parseParent(parent, perm string) error {
	toks := strings.Split(parent, "/")
	switch {
	case len(toks) == 4 && toks[0] == "projects" && toks[2] == "locations":
		return statusErr(codes.Unimplemented, "gcpsmtest: regional secrets are not modelled")
	case len(toks) != 2 || toks[0] != "projects" || toks[1] == "":
		return statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid resource field value in the request: parent %q is not of the form projects/*.", parent))
	}
	return s.checkProject(toks[1], parent, perm)
}

func (s *Server) parseSecret(name, perm string) (string, error) {
	toks := strings.Split(name, "/")
	switch {
	case len(toks) == 6 && toks[0] == "projects" && toks[2] == "locations":
		return "", statusErr(codes.Unimplemented, "gcpsmtest: regional secrets are not modelled")
	case len(toks) != 4 || toks[0] != "projects" || toks[2] != "secrets" || !secretIDPattern.MatchString(toks[3]):
		return "", statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid resource field value in the request: %q is not of the form projects/*/secrets/*.", name))
	}
	return toks[3], s.checkProject(toks[1], name, perm)
}

// parseVersion returns the secret ID and the version: a number, or 0 for
// "latest".
func (s *Server) parseVersion(name, perm string) (string, int64, error) {
	i := strings.LastIndex(name, "/versions/")
	if i < 0 {
		return "", 0, statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid resource field value in the request: %q is not of the form projects/*/secrets/*/versions/*.", name))
	}
	id, err := s.parseSecret(name[:i], perm)
	if err != nil {
		return "", 0, err
	}
	v := name[i+len("/versions/"):]
	if v == "latest" {
		return id, 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		// Not a number: an alias, which the server does not model.
		return "", 0, statusErr(codes.NotFound, fmt.Sprintf("Secret Version [%s] not found.", name))
	}
	return id, n, nil
}

func (s *Server) notFound(id string) error {
	return statusErr(codes.NotFound, fmt.Sprintf("Secret [%s] not found.", s.secretName(id)))
}

func checkLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return statusErr(codes.InvalidArgument, fmt.Sprintf("A secret can have at most %d labels.", MaxLabels))
	}
	for k, v := range labels {
		if !labelKeyPattern.MatchString(k) || len(k) > 128 {
			return statusErr(codes.InvalidArgument, fmt.Sprintf("Label key [%s] is invalid: keys must start with a lowercase letter and have 1 to 63 lowercase letters, digits, '_' or '-'.", k))
		}
		if !labelValPattern.MatchString(v) || len(v) > 128 {
			return statusErr(codes.InvalidArgument, fmt.Sprintf("Label value [%s] of key [%s] is invalid: values have 0 to 63 lowercase letters, digits, '_' or '-'.", v, k))
		}
	}
	return nil
}

var annotationKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)

func checkAnnotations(a map[string]string) error {
	size := 0
	for k, v := range a {
		if !annotationKeyPattern.MatchString(k) {
			return statusErr(codes.InvalidArgument, fmt.Sprintf("Annotation key [%s] is invalid.", k))
		}
		size += len(k) + len(v)
	}
	if size >= 16<<10 {
		return statusErr(codes.InvalidArgument, "The total size of annotation keys and values must be less than 16KiB.")
	}
	return nil
}

// toProto returns the Secret as the API shows it. s.mu is held.
func (s *Server) toProto(sec *secret) *secretmanagerpb.Secret {
	return &secretmanagerpb.Secret{
		Name:        s.secretName(sec.id),
		Replication: proto.Clone(sec.replication).(*secretmanagerpb.Replication),
		CreateTime:  timestamppb.New(sec.created),
		Labels:      maps.Clone(sec.labels),
		Annotations: maps.Clone(sec.annotations),
		Etag:        sec.etag,
	}
}

func (s *Server) versionProto(sec *secret, v *version) *secretmanagerpb.SecretVersion {
	out := &secretmanagerpb.SecretVersion{
		Name:                           s.versionName(sec.id, v.n),
		CreateTime:                     timestamppb.New(v.created),
		State:                          v.state,
		Etag:                           v.etag,
		ClientSpecifiedPayloadChecksum: v.clientCRC,
		ReplicationStatus: &secretmanagerpb.ReplicationStatus{
			ReplicationStatus: &secretmanagerpb.ReplicationStatus_Automatic{Automatic: &secretmanagerpb.ReplicationStatus_AutomaticStatus{}},
		},
	}
	if v.state == secretmanagerpb.SecretVersion_DESTROYED {
		out.DestroyTime = timestamppb.New(v.destroyed)
	}
	return out
}

func (x *service) CreateSecret(_ context.Context, req *secretmanagerpb.CreateSecretRequest) (*secretmanagerpb.Secret, error) {
	s := x.s
	if err := s.parseParent(req.GetParent(), PermSecretsCreate); err != nil {
		return nil, err
	}
	id := req.GetSecretId()
	if !secretIDPattern.MatchString(id) {
		return nil, statusErr(codes.InvalidArgument, "Invalid secret ID: a secret ID is a string of 1 to 255 characters that are uppercase or lowercase letters, numerals, the hyphen (-) or the underscore (_).")
	}
	in := req.GetSecret()
	if in.GetReplication().GetReplication() == nil {
		return nil, statusErr(codes.InvalidArgument, "Field [secret.replication] is required.")
	}
	if um := in.GetReplication().GetUserManaged(); um != nil && len(um.GetReplicas()) == 0 {
		return nil, statusErr(codes.InvalidArgument, "Field [secret.replication.user_managed.replicas] is required.")
	}
	if err := checkLabels(in.GetLabels()); err != nil {
		return nil, err
	}
	if err := checkAnnotations(in.GetAnnotations()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets[id] != nil {
		return nil, statusErr(codes.AlreadyExists, fmt.Sprintf("Secret [%s] already exists.", s.secretName(id)))
	}
	s.seq++
	sec := &secret{
		id: id, seq: s.seq, created: s.opts.Now().UTC(),
		labels: maps.Clone(in.GetLabels()), annotations: maps.Clone(in.GetAnnotations()),
		replication: proto.Clone(in.GetReplication()).(*secretmanagerpb.Replication),
		etag:        newEtag(),
	}
	s.secrets[id] = sec
	return s.toProto(sec), nil
}

func (x *service) GetSecret(_ context.Context, req *secretmanagerpb.GetSecretRequest) (*secretmanagerpb.Secret, error) {
	s := x.s
	id, err := s.parseSecret(req.GetName(), PermSecretsGet)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil, s.notFound(id)
	}
	return s.toProto(sec), nil
}

func (x *service) UpdateSecret(_ context.Context, req *secretmanagerpb.UpdateSecretRequest) (*secretmanagerpb.Secret, error) {
	s := x.s
	in := req.GetSecret()
	id, err := s.parseSecret(in.GetName(), PermSecretsUpdate)
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, statusErr(codes.InvalidArgument, "Field [update_mask] is required.")
	}
	for _, p := range paths {
		switch p {
		case "labels":
			if err := checkLabels(in.GetLabels()); err != nil {
				return nil, err
			}
		case "annotations":
			if err := checkAnnotations(in.GetAnnotations()); err != nil {
				return nil, err
			}
		default:
			return nil, statusErr(codes.InvalidArgument, fmt.Sprintf("gcpsmtest: updating [%s] is not modelled (only labels and annotations).", p))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil, s.notFound(id)
	}
	if e := in.GetEtag(); e != "" && e != sec.etag {
		return nil, etagMismatch()
	}
	for _, p := range paths {
		switch p {
		case "labels":
			sec.labels = maps.Clone(in.GetLabels())
		case "annotations":
			sec.annotations = maps.Clone(in.GetAnnotations())
		}
	}
	sec.etag = newEtag()
	return s.toProto(sec), nil
}

func etagMismatch() error {
	return statusErr(codes.FailedPrecondition, "The etag provided in the request does not match the current etag of the resource.")
}

func (x *service) DeleteSecret(_ context.Context, req *secretmanagerpb.DeleteSecretRequest) (*emptypb.Empty, error) {
	s := x.s
	id, err := s.parseSecret(req.GetName(), PermSecretsDelete)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil, s.notFound(id)
	}
	if e := req.GetEtag(); e != "" && e != sec.etag {
		return nil, etagMismatch()
	}
	delete(s.secrets, id)
	return &emptypb.Empty{}, nil
}

// pageToken is what a page token holds: the position after the last item
// of the page, and a digest of the request it continues.
type pageToken struct {
	After  int64  `json:"a"`
	Filter string `json:"f"`
}

func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s, filter string) (int64, error) {
	if s == "" {
		return -1, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var t pageToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.Filter != filter {
		return 0, statusErr(codes.InvalidArgument, "The provided page token is invalid.")
	}
	return t.After, nil
}

func (s *Server) pageSize(n int32) (int, error) {
	if n < 0 {
		return 0, statusErr(codes.InvalidArgument, "page_size must not be negative.")
	}
	if n == 0 || int(n) > s.opts.MaxPageSize {
		return s.opts.MaxPageSize, nil
	}
	return int(n), nil
}

func (x *service) ListSecrets(_ context.Context, req *secretmanagerpb.ListSecretsRequest) (*secretmanagerpb.ListSecretsResponse, error) {
	s := x.s
	if err := s.parseParent(req.GetParent(), PermSecretsList); err != nil {
		return nil, err
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	f, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid filter [%s]: %v.", req.GetFilter(), err))
	}
	after, err := decodeToken(req.GetPageToken(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := slices.Collect(maps.Values(s.secrets))
	// Newest first, as the API sorts them.
	slices.SortFunc(all, func(a, b *secret) int { return int(b.seq - a.seq) })
	resp := &secretmanagerpb.ListSecretsResponse{}
	total := 0
	for _, sec := range all {
		ok, err := f.match(s.secretFields(sec))
		if err != nil {
			return nil, statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid filter [%s]: %v.", req.GetFilter(), err))
		}
		if !ok {
			continue
		}
		total++
		if after >= 0 && sec.seq >= after {
			continue
		}
		if len(resp.Secrets) == size {
			resp.NextPageToken = encodeToken(pageToken{After: s.seqOf(resp.Secrets[size-1]), Filter: req.GetFilter()})
			continue
		}
		resp.Secrets = append(resp.Secrets, s.toProto(sec))
	}
	if req.GetFilter() == "" {
		resp.TotalSize = int32(total)
	}
	return resp, nil
}

// seqOf returns the creation order of a listed secret. s.mu is held.
func (s *Server) seqOf(p *secretmanagerpb.Secret) int64 {
	return s.secrets[p.GetName()[strings.LastIndex(p.GetName(), "/")+1:]].seq
}

func (s *Server) secretFields(sec *secret) fieldFunc {
	return func(name string) (string, bool, error) {
		switch {
		case name == "name":
			return s.secretName(sec.id), true, nil
		case name == "create_time":
			return sec.created.Format(time.RFC3339Nano), true, nil
		case name == "labels":
			return strings.Join(slices.Collect(maps.Keys(sec.labels)), "\x00"), true, nil
		case strings.HasPrefix(name, "labels."):
			v, ok := sec.labels[strings.TrimPrefix(name, "labels.")]
			return v, ok, nil
		case strings.HasPrefix(name, "annotations."):
			v, ok := sec.annotations[strings.TrimPrefix(name, "annotations.")]
			return v, ok, nil
		case name == "replication.automatic":
			return "", sec.replication.GetAutomatic() != nil, nil
		case name == "replication.user_managed":
			return "", sec.replication.GetUserManaged() != nil, nil
		}
		return "", false, fmt.Errorf("unknown field %q", name)
	}
}

func (x *service) AddSecretVersion(_ context.Context, req *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	s := x.s
	id, err := s.parseSecret(req.GetParent(), PermVersionsAdd)
	if err != nil {
		return nil, err
	}
	p := req.GetPayload()
	switch {
	case p == nil:
		return nil, statusErr(codes.InvalidArgument, "Field [payload] is required.")
	case len(p.GetData()) == 0:
		return nil, statusErr(codes.InvalidArgument, "Secret Payload cannot be empty.")
	case len(p.GetData()) > MaxPayload:
		return nil, statusErr(codes.InvalidArgument, fmt.Sprintf("Secret Payload cannot be larger than %d bytes.", MaxPayload))
	}
	if c := p.DataCrc32C; c != nil && (*c < 0 || *c > 0xFFFFFFFF || uint32(*c) != crc32.Checksum(p.GetData(), castagnoli)) {
		return nil, statusErr(codes.InvalidArgument, "Checksum mismatch: the data_crc32c of the payload does not match the CRC32C of its data. The data may have been corrupted in transit.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil, s.notFound(id)
	}
	v := s.addVersion(sec, p.GetData())
	v.clientCRC = p.DataCrc32C != nil
	return s.versionProto(sec, v), nil
}

// addVersion appends an ENABLED version. s.mu is held.
func (s *Server) addVersion(sec *secret, data []byte) *version {
	v := &version{
		n:       int64(len(sec.versions) + 1),
		data:    slices.Clone(data),
		crc:     crc32.Checksum(data, castagnoli),
		state:   secretmanagerpb.SecretVersion_ENABLED,
		created: s.opts.Now().UTC(),
		etag:    newEtag(),
	}
	sec.versions = append(sec.versions, v)
	return v
}

// resolve finds a version: n, or the latest for 0. s.mu is held.
func (s *Server) resolve(id string, n int64, name string) (*secret, *version, error) {
	sec := s.secrets[id]
	if sec == nil {
		if n == 0 {
			return nil, nil, statusErr(codes.NotFound, fmt.Sprintf("Secret [%s] not found or has no versions.", s.secretName(id)))
		}
		return nil, nil, s.notFound(id)
	}
	if n == 0 {
		if len(sec.versions) == 0 {
			return nil, nil, statusErr(codes.NotFound, fmt.Sprintf("Secret [%s] not found or has no versions.", s.secretName(id)))
		}
		return sec, sec.versions[len(sec.versions)-1], nil
	}
	if n > int64(len(sec.versions)) {
		return nil, nil, statusErr(codes.NotFound, fmt.Sprintf("Secret Version [%s] not found.", s.versionName(id, n)))
	}
	return sec, sec.versions[n-1], nil
}

func (x *service) GetSecretVersion(_ context.Context, req *secretmanagerpb.GetSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	s := x.s
	id, n, err := s.parseVersion(req.GetName(), PermVersionsGet)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, v, err := s.resolve(id, n, req.GetName())
	if err != nil {
		return nil, err
	}
	return s.versionProto(sec, v), nil
}

func (x *service) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	s := x.s
	id, n, err := s.parseVersion(req.GetName(), PermVersionsAccess)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, v, err := s.resolve(id, n, req.GetName())
	if err != nil {
		return nil, err
	}
	if v.state != secretmanagerpb.SecretVersion_ENABLED {
		return nil, statusErr(codes.FailedPrecondition, fmt.Sprintf("Secret Version [%s] is in %s state.", s.versionName(id, v.n), v.state))
	}
	crc := int64(v.crc)
	if s.corrupt > 0 {
		s.corrupt--
		crc ^= 1
	}
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    s.versionName(sec.id, v.n),
		Payload: &secretmanagerpb.SecretPayload{Data: slices.Clone(v.data), DataCrc32C: &crc},
	}, nil
}

func (x *service) ListSecretVersions(_ context.Context, req *secretmanagerpb.ListSecretVersionsRequest) (*secretmanagerpb.ListSecretVersionsResponse, error) {
	s := x.s
	id, err := s.parseSecret(req.GetParent(), PermVersionsList)
	if err != nil {
		return nil, err
	}
	size, err := s.pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	f, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid filter [%s]: %v.", req.GetFilter(), err))
	}
	after, err := decodeToken(req.GetPageToken(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil, s.notFound(id)
	}
	resp := &secretmanagerpb.ListSecretVersionsResponse{}
	total := 0
	for i := len(sec.versions) - 1; i >= 0; i-- { // newest first
		v := sec.versions[i]
		ok, err := f.match(s.versionFields(sec, v))
		if err != nil {
			return nil, statusErr(codes.InvalidArgument, fmt.Sprintf("Invalid filter [%s]: %v.", req.GetFilter(), err))
		}
		if !ok {
			continue
		}
		total++
		if after >= 0 && v.n >= after {
			continue
		}
		if len(resp.Versions) == size {
			last := resp.Versions[size-1].GetName()
			n, _ := strconv.ParseInt(last[strings.LastIndex(last, "/")+1:], 10, 64)
			resp.NextPageToken = encodeToken(pageToken{After: n, Filter: req.GetFilter()})
			continue
		}
		resp.Versions = append(resp.Versions, s.versionProto(sec, v))
	}
	if req.GetFilter() == "" {
		resp.TotalSize = int32(total)
	}
	return resp, nil
}

func (s *Server) versionFields(sec *secret, v *version) fieldFunc {
	return func(name string) (string, bool, error) {
		switch name {
		case "name":
			return s.versionName(sec.id, v.n), true, nil
		case "state":
			return v.state.String(), true, nil
		case "create_time":
			return v.created.Format(time.RFC3339Nano), true, nil
		}
		return "", false, fmt.Errorf("unknown field %q", name)
	}
}

func (s *Server) setState(name, perm, etag string, state secretmanagerpb.SecretVersion_State) (*secretmanagerpb.SecretVersion, error) {
	id, n, err := s.parseVersion(name, perm)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, statusErr(codes.InvalidArgument, "The 'latest' alias cannot be used to change the state of a version.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, v, err := s.resolve(id, n, name)
	if err != nil {
		return nil, err
	}
	if etag != "" && etag != v.etag {
		return nil, etagMismatch()
	}
	if v.state == secretmanagerpb.SecretVersion_DESTROYED {
		return nil, statusErr(codes.FailedPrecondition, fmt.Sprintf("Secret Version [%s] is in DESTROYED state.", s.versionName(id, n)))
	}
	v.state = state
	if state == secretmanagerpb.SecretVersion_DESTROYED {
		v.data, v.destroyed = nil, s.opts.Now().UTC()
	}
	v.etag = newEtag()
	return s.versionProto(sec, v), nil
}

func (x *service) DisableSecretVersion(_ context.Context, req *secretmanagerpb.DisableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return x.s.setState(req.GetName(), PermVersionsDisable, req.GetEtag(), secretmanagerpb.SecretVersion_DISABLED)
}

func (x *service) EnableSecretVersion(_ context.Context, req *secretmanagerpb.EnableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return x.s.setState(req.GetName(), PermVersionsEnable, req.GetEtag(), secretmanagerpb.SecretVersion_ENABLED)
}

func (x *service) DestroySecretVersion(_ context.Context, req *secretmanagerpb.DestroySecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return x.s.setState(req.GetName(), PermVersionsDestroy, req.GetEtag(), secretmanagerpb.SecretVersion_DESTROYED)
}

// VersionInfo describes one version of a secret, for tests.
type VersionInfo struct {
	Number  int64
	State   secretmanagerpb.SecretVersion_State
	Created time.Time
	// ClientChecksum reports that the client sent the payload's CRC32C.
	ClientChecksum bool
}

// automatic is the replication of the secrets the helpers create.
func automatic() *secretmanagerpb.Replication {
	return &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}}
}

// Put writes value as a new version of the secret id, as another writer
// would; it creates the secret with labels (which may be nil) if it does
// not exist, and leaves the labels of an existing secret as they are. It
// returns the new version's number.
func (s *Server) Put(id, value string, labels map[string]string) (int64, error) {
	if !secretIDPattern.MatchString(id) {
		return 0, fmt.Errorf("gcpsmtest: invalid secret ID %q", id)
	}
	if err := checkLabels(labels); err != nil {
		return 0, err
	}
	if len(value) == 0 || len(value) > MaxPayload {
		return 0, fmt.Errorf("gcpsmtest: a payload has 1 to %d bytes", MaxPayload)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		s.seq++
		sec = &secret{id: id, seq: s.seq, created: s.opts.Now().UTC(), labels: maps.Clone(labels), replication: automatic(), etag: newEtag()}
		s.secrets[id] = sec
	}
	return s.addVersion(sec, []byte(value)).n, nil
}

// AddVersion adds value as a new version of the existing secret id, as
// another writer would, and returns its number.
func (s *Server) AddVersion(id, value string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return 0, fmt.Errorf("gcpsmtest: no secret %q", id)
	}
	return s.addVersion(sec, []byte(value)).n, nil
}

// Delete deletes the secret id and its versions, as another writer would;
// it reports whether the secret existed.
func (s *Server) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.secrets[id]
	delete(s.secrets, id)
	return ok
}

// SetLabels replaces the labels of the secret id, as another writer
// would (its etag changes).
func (s *Server) SetLabels(id string, labels map[string]string) error {
	if err := checkLabels(labels); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return fmt.Errorf("gcpsmtest: no secret %q", id)
	}
	sec.labels = maps.Clone(labels)
	sec.etag = newEtag()
	return nil
}

// SetVersionState sets the state of version n of the secret id (a
// destroyed version loses its data and stays destroyed).
func (s *Server) SetVersionState(id string, n int64, state secretmanagerpb.SecretVersion_State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil || n < 1 || n > int64(len(sec.versions)) {
		return fmt.Errorf("gcpsmtest: no version %d of %q", n, id)
	}
	v := sec.versions[n-1]
	if v.state == secretmanagerpb.SecretVersion_DESTROYED {
		return fmt.Errorf("gcpsmtest: version %d of %q is destroyed", n, id)
	}
	v.state = state
	if state == secretmanagerpb.SecretVersion_DESTROYED {
		v.data, v.destroyed = nil, s.opts.Now().UTC()
	}
	v.etag = newEtag()
	return nil
}

// Value returns the data of the latest ENABLED version of the secret id
// and its number; ok is false when the secret does not exist or has no
// enabled version.
func (s *Server) Value(id string) (value string, number int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return "", 0, false
	}
	for i := len(sec.versions) - 1; i >= 0; i-- {
		if v := sec.versions[i]; v.state == secretmanagerpb.SecretVersion_ENABLED {
			return string(v.data), v.n, true
		}
	}
	return "", 0, false
}

// Exists reports whether the secret id exists.
func (s *Server) Exists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secrets[id] != nil
}

// Labels returns the labels of the secret id, or nil when it does not
// exist.
func (s *Server) Labels(id string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[id]; sec != nil {
		out := maps.Clone(sec.labels)
		if out == nil {
			out = map[string]string{}
		}
		return out
	}
	return nil
}

// Versions returns the versions of the secret id, oldest first.
func (s *Server) Versions(id string) []VersionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil
	}
	out := make([]VersionInfo, len(sec.versions))
	for i, v := range sec.versions {
		out[i] = VersionInfo{Number: v.n, State: v.state, Created: v.created, ClientChecksum: v.clientCRC}
	}
	return out
}

// Secrets returns the IDs of every secret, sorted.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.secrets))
}
