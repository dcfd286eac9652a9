package gcpsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"cloud.google.com/go/auth/credentials"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"golang.org/x/sync/errgroup"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/keylock"
)

// Scope is the OAuth scope the destination asks for.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// Options configures a Destination.
type Options struct {
	// Credentials is a service account's JSON key (required). The
	// destination obtains OAuth access tokens for Scope from the key's
	// token_uri with the JWT-bearer grant. Only keys of type
	// "service_account" are accepted.
	Credentials []byte
	// ProjectID is the project of the secrets; empty means the key's
	// project_id.
	ProjectID string
	// Owner identifies the sync that uses the destination (see
	// registry.Target.Owner): secrets are created with the label
	// LabelOwner set to OwnerLabel(Owner), and only secrets with that
	// label (and LabelManagedBy) are listed, overwritten or deleted.
	Owner string
	// Labels are custom labels set on every secret the destination
	// creates, and added to an owned secret it writes when they are
	// missing. Keys and values must follow Secret Manager's label rules.
	Labels map[string]string
	// Endpoint is the gRPC endpoint, "host:port"; empty means Secret
	// Manager's global endpoint, secretmanager.googleapis.com:443.
	Endpoint string
	// HTTPClient sends the token requests; nil means a default client.
	HTTPClient *http.Client
	// ClientOptions are added last to the options of the SDK's client
	// (for example the transport credentials of a test server, or
	// option.WithGRPCConnectionPool).
	ClientOptions []option.ClientOption
	// PageSize is the page size of ListSecrets; 0 lets the service
	// decide (at most 25000).
	PageSize int
	// Concurrency is how many secrets List reads at once; 0 means 8.
	Concurrency int
}

// String describes the options with the credentials shown as "*****",
// so that printing them (%v, %+v, %s) never shows the key.
func (o Options) String() string {
	creds := ""
	if len(o.Credentials) > 0 {
		creds = "*****"
	}
	return fmt.Sprintf("{Credentials:%s ProjectID:%q Owner:%q Labels:%v Endpoint:%q PageSize:%d Concurrency:%d}",
		creds, o.ProjectID, o.Owner, o.Labels, o.Endpoint, o.PageSize, o.Concurrency)
}

// GoString is like String, so that %#v does not show the key either.
func (o Options) GoString() string { return "gcpsm.Options" + o.String() }

// Destination is Google Cloud Secret Manager as a
// destination.Destination: one secret per key, in one project. It is
// safe for concurrent use. Close it when done.
type Destination struct {
	client   *secretmanager.Client
	project  string // "projects/<id>"
	owner    string // the value of LabelOwner; "" for none
	labels   map[string]string
	pageSize int32
	conc     int

	// locks serializes the writes of one key through this Destination,
	// so that writers sharing it never race each other between their
	// read and their write.
	locks keylock.Map

	closeOnce gosync.Once
	closeErr  error
}

var (
	_ destination.Destination   = (*Destination)(nil)
	_ destination.Describer     = (*Destination)(nil)
	_ destination.KeyNormalizer = (*Destination)(nil)
)

// keyFile is the part of a service account key that New reads itself.
type keyFile struct {
	Type      string `json:"type"`
	ProjectID string `json:"project_id"`
}

// New opens Secret Manager with options. It connects lazily: the first
// request obtains a token and opens the gRPC connection.
// A nil options means the zero Options.
func New(ctx context.Context, options *Options) (*Destination, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	if len(opts.Credentials) == 0 {
		return nil, errors.New("gcpsm: Options.Credentials is required (a service account's JSON key)")
	}
	var kf keyFile
	if err := json.Unmarshal(opts.Credentials, &kf); err != nil {
		return nil, errors.New("gcpsm: the credentials are not a JSON object")
	}
	if kf.Type != "service_account" {
		return nil, fmt.Errorf("gcpsm: the credentials are of type %q, not a service account key", kf.Type)
	}
	project := opts.ProjectID
	if project == "" {
		project = kf.ProjectID
	}
	if project == "" || strings.ContainsAny(project, "/ ") {
		return nil, fmt.Errorf("gcpsm: invalid or missing project ID %q (set Options.ProjectID or the key's project_id)", project)
	}
	if err := checkLabels(opts.Labels); err != nil {
		return nil, err
	}
	if opts.PageSize < 0 || opts.PageSize > 25000 {
		return nil, fmt.Errorf("gcpsm: page size %d is not between 0 and 25000", opts.PageSize)
	}
	creds, err := credentials.NewCredentialsFromJSON(credentials.ServiceAccount, opts.Credentials, &credentials.DetectOptions{
		Scopes: []string{Scope},
		Client: opts.HTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("gcpsm: service account key: %w", err)
	}
	co := []option.ClientOption{option.WithAuthCredentials(creds)}
	if opts.Endpoint != "" {
		co = append(co, option.WithEndpoint(opts.Endpoint))
	}
	co = append(co, opts.ClientOptions...)
	client, err := secretmanager.NewClient(ctx, co...)
	if err != nil {
		return nil, fmt.Errorf("gcpsm: %w", err)
	}
	d := &Destination{
		client:   client,
		project:  "projects/" + project,
		labels:   maps.Clone(opts.Labels),
		pageSize: int32(opts.PageSize),
		conc:     opts.Concurrency,
	}
	if opts.Owner != "" {
		d.owner = OwnerLabel(opts.Owner)
	}
	if d.conc <= 0 {
		d.conc = 8
	}
	return d, nil
}

// Close closes the SDK client and its connections.
func (d *Destination) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.client.Close() })
	return d.closeErr
}

// Capabilities reports NoCheckAndSet: Secret Manager cannot make adding a
// version conditional (see the package documentation for how the race is
// narrowed).
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{NoCheckAndSet: true}
}

// NormalizeKey is the package's NormalizeKey.
func (d *Destination) NormalizeKey(key string) (string, error) { return NormalizeKey(key) }

func (d *Destination) secretName(id string) string { return d.project + "/secrets/" + id }

// owns reports whether labels carry the destination's marker.
func (d *Destination) owns(labels map[string]string) bool {
	if labels[LabelManagedBy] != ManagedByValue {
		return false
	}
	v, ok := labels[LabelOwner]
	if d.owner == "" {
		return !ok
	}
	return ok && v == d.owner
}

// createLabels returns the labels of a new secret.
func (d *Destination) createLabels() map[string]string {
	l := maps.Clone(d.labels)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelManagedBy] = ManagedByValue
	if d.owner != "" {
		l[LabelOwner] = d.owner
	}
	return l
}

// version is the Version of a key: its latest enabled version number and
// the creation time of the secret, so that a secret deleted and created
// again never shows a version read before the deletion.
func version(n int64, created time.Time) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10) + "@" + created.UTC().Format(time.RFC3339Nano)
}

// number returns the version number at the end of a version's name.
func number(name string) (int64, error) {
	n, err := strconv.ParseInt(name[strings.LastIndex(name, "/")+1:], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("gcpsm: unexpected version name %q", name)
	}
	return n, nil
}

func idOf(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// fail classifies the error of a request: the context's error when ctx
// is done; an error matching destination.ErrUnavailable when Secret
// Manager as a whole cannot serve (UNAVAILABLE, RESOURCE_EXHAUSTED after
// the SDK's retries, DEADLINE_EXCEEDED, INTERNAL, or UNAUTHENTICATED: the
// credentials are refused); otherwise the error, wrapped with what was
// done.
func fail(ctx context.Context, what string, err error) error {
	if dl, ok := ctx.Deadline(); ok && status.Code(err) == codes.DeadlineExceeded && time.Until(dl) < time.Second {
		// The server propagates the caller's deadline and may answer
		// DEADLINE_EXCEEDED a moment before ctx expires here: it is the
		// caller's deadline that cut the request.
		t := time.NewTimer(time.Until(dl) + 100*time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal, codes.Unauthenticated:
		return fmt.Errorf("%w: gcpsm: %s: %w", destination.ErrUnavailable, what, err)
	}
	return fmt.Errorf("gcpsm: %s: %w", what, err)
}

// List returns every secret of the project that carries the
// destination's marker and has an enabled version, with the data of its
// latest enabled version. It costs one ListSecrets request per page and
// one AccessSecretVersion per secret (two more for a secret whose latest
// version is disabled or destroyed).
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	filter := "labels." + LabelManagedBy + "=" + ManagedByValue
	if d.owner != "" {
		filter += " AND labels." + LabelOwner + "=" + d.owner
	}
	type entry struct {
		id      string
		created time.Time
	}
	var entries []entry
	it := d.client.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: d.project, Filter: filter, PageSize: d.pageSize})
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fail(ctx, "list secrets", err)
		}
		if d.owns(s.GetLabels()) { // the filter is checked again here
			entries = append(entries, entry{idOf(s.GetName()), s.GetCreateTime().AsTime()})
		}
	}
	out := make(map[string]destination.Secret, len(entries))
	var mu gosync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.conc)
	for _, e := range entries {
		g.Go(func() error {
			data, n, err := d.readLatest(gctx, e.id)
			if err != nil || n == 0 {
				return err
			}
			mu.Lock()
			out[e.id] = destination.Secret{Value: string(data), Version: version(n, e.created)}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return out, nil
}

// readLatest reads the data of the latest enabled version of the secret
// id; n is 0 when it has none (or no longer exists).
func (d *Destination) readLatest(ctx context.Context, id string) (data []byte, n int64, err error) {
	name := d.secretName(id)
	resp, err := d.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/latest"})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		return nil, 0, nil
	case codes.FailedPrecondition:
		// The latest version is disabled or destroyed: find the latest
		// enabled one.
		n, _, err := d.latest(ctx, name)
		if err != nil || n == 0 {
			return nil, 0, err
		}
		resp, err = d.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/" + strconv.FormatInt(n, 10)})
		switch status.Code(err) {
		case codes.OK:
		case codes.NotFound, codes.FailedPrecondition: // changed meanwhile
			return nil, 0, nil
		default:
			return nil, 0, fail(ctx, "access "+id, err)
		}
	default:
		return nil, 0, fail(ctx, "access "+id, err)
	}
	p := resp.GetPayload()
	if c := p.DataCrc32C; c != nil && uint32(*c) != crc32.Checksum(p.GetData(), castagnoli) {
		return nil, 0, fmt.Errorf("gcpsm: access %s: the payload does not match its CRC32C checksum", id)
	}
	n, err = number(resp.GetName())
	return p.GetData(), n, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// latest returns the number of the latest enabled version of the secret
// name (0 for none) and the highest version number of any state (0 for
// none): one ListSecretVersions request of one version, and a second one
// filtered on state when that version is not enabled. A secret that does
// not exist has neither.
func (d *Destination) latest(ctx context.Context, name string) (enabled, highest int64, err error) {
	first := func(filter string) (*secretmanagerpb.SecretVersion, error) {
		it := d.client.ListSecretVersions(ctx, &secretmanagerpb.ListSecretVersionsRequest{Parent: name, PageSize: 1, Filter: filter})
		v, err := it.Next()
		switch {
		case errors.Is(err, iterator.Done), status.Code(err) == codes.NotFound:
			return nil, nil
		case err != nil:
			return nil, fail(ctx, "list versions of "+idOf(name), err)
		}
		return v, nil
	}
	v, err := first("")
	if err != nil || v == nil {
		return 0, 0, err
	}
	if highest, err = number(v.GetName()); err != nil {
		return 0, 0, err
	}
	if v.GetState() == secretmanagerpb.SecretVersion_ENABLED {
		return highest, highest, nil
	}
	if v, err = first("state:ENABLED"); err != nil || v == nil {
		return 0, highest, err
	}
	enabled, err = number(v.GetName())
	return enabled, highest, err
}

// below returns the highest version number of the secret name that is
// lower than n (0 for none), reading its versions newest first.
func (d *Destination) below(ctx context.Context, name string, n int64) (int64, error) {
	it := d.client.ListSecretVersions(ctx, &secretmanagerpb.ListSecretVersionsRequest{Parent: name, PageSize: d.pageSize})
	for {
		v, err := it.Next()
		switch {
		case errors.Is(err, iterator.Done):
			return 0, nil
		case err != nil:
			return 0, fail(ctx, "list versions of "+idOf(name), err)
		}
		m, err := number(v.GetName())
		if err != nil {
			return 0, err
		}
		if m < n {
			return m, nil
		}
	}
}

// Apply applies each change, in order, and returns one result per change:
// nil, or a *destination.KeyError wrapping destination.ErrConflict (the
// key's version is not Expect, before the write or, detected after it,
// because another writer added a version in between), ErrNotOwned (the
// secret exists without the destination's marker), ErrInvalidKey (not a
// valid secret ID), ErrInvalidValue (empty, or more than 64 KiB), or the
// request's error. It stops at the first error matching
// destination.ErrUnavailable or a done ctx, and then returns that error
// too, with the changes it did not attempt failed with it.
func (d *Destination) Apply(ctx context.Context, changes []destination.Change) ([]error, error) {
	return destination.ApplyEach(ctx, changes, d.applyOne, nil)
}

// applyOne applies c while holding its key's lock.
func (d *Destination) applyOne(ctx context.Context, c destination.Change) error {
	unlock, err := d.locks.Lock(ctx, c.Key)
	if err != nil {
		return err
	}
	defer unlock()
	if c.Delete {
		return d.remove(ctx, c)
	}
	return d.put(ctx, c)
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{destination.ErrConflict}, args...)...)
}

func checkValue(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: Secret Manager refuses an empty payload", destination.ErrInvalidValue)
	case len(v) > MaxPayload:
		return fmt.Errorf("%w: %d bytes, more than the %d of a secret version", destination.ErrInvalidValue, len(v), MaxPayload)
	}
	return nil
}

// getOwned reads the secret id and checks its marker; nil when it does
// not exist.
func (d *Destination) getOwned(ctx context.Context, id string) (*secretmanagerpb.Secret, error) {
	s, err := d.client.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: d.secretName(id)})
	switch {
	case status.Code(err) == codes.NotFound:
		return nil, nil
	case err != nil:
		return nil, fail(ctx, "get "+id, err)
	case !d.owns(s.GetLabels()):
		return nil, fmt.Errorf("%w: secret %s has no %s=%s label for this owner", destination.ErrNotOwned, id, LabelManagedBy, ManagedByValue)
	}
	return s, nil
}

// put writes c.Value as a new version of the secret c.Key (creating the
// secret when c.Expect is ""), after checking that the key's version is
// c.Expect, and then checks that no other version was added between
// that read and the write.
func (d *Destination) put(ctx context.Context, c destination.Change) error {
	if err := checkID(c.Key); err != nil {
		return err
	}
	if err := checkValue(c.Value); err != nil {
		return err
	}
	name := d.secretName(c.Key)
	var highest int64 // the highest version number before our write
	var sec *secretmanagerpb.Secret
	if c.Expect == "" {
		created, err := d.client.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
			Parent:   d.project,
			SecretId: c.Key,
			Secret: &secretmanagerpb.Secret{
				Replication: &secretmanagerpb.Replication{Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}}},
				Labels:      d.createLabels(),
			},
		})
		switch status.Code(err) {
		case codes.OK:
			sec = created
		case codes.AlreadyExists:
			// Ours and without an enabled version (a crash between the
			// creation and the first version, say), it can take one.
			if sec, err = d.getOwned(ctx, c.Key); err != nil {
				return err
			}
			if sec == nil {
				return conflict("secret %s was deleted while it was being created", c.Key)
			}
			enabled, hi, err := d.latest(ctx, name)
			if err != nil {
				return err
			}
			if enabled != 0 {
				return conflict("secret %s exists", c.Key)
			}
			highest = hi
		default:
			return fail(ctx, "create "+c.Key, err)
		}
	} else {
		var err error
		if sec, err = d.getOwned(ctx, c.Key); err != nil {
			return err
		}
		if sec == nil {
			return conflict("secret %s does not exist", c.Key)
		}
		enabled, hi, err := d.latest(ctx, name)
		if err != nil {
			return err
		}
		if v := version(enabled, sec.GetCreateTime().AsTime()); v != c.Expect {
			return conflict("secret %s is at version %q, not %q", c.Key, v, c.Expect)
		}
		highest = hi
	}
	if err := d.addLabels(ctx, sec); err != nil {
		return err
	}
	data := []byte(c.Value)
	sum := int64(crc32.Checksum(data, castagnoli))
	v, err := d.client.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  name,
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	})
	switch {
	case status.Code(err) == codes.NotFound:
		return conflict("secret %s was deleted before the write", c.Key)
	case err != nil:
		return fail(ctx, "add a version to "+c.Key, err)
	}
	n, err := number(v.GetName())
	if err != nil {
		return err
	}
	if n == highest+1 {
		return nil // nothing was added between the read and the write
	}
	b, err := d.below(ctx, name, n)
	if err != nil {
		return fmt.Errorf("version %d written, but the check for a concurrent write failed: %w", n, err)
	}
	if b != highest {
		return conflict("another writer added version %d of secret %s between the read and this write (version %d, which is now the latest)", b, c.Key, n)
	}
	return nil
}

// addLabels adds the custom labels that an owned secret lacks, with its
// etag.
func (d *Destination) addLabels(ctx context.Context, sec *secretmanagerpb.Secret) error {
	missing := false
	for k, v := range d.labels {
		if cur, ok := sec.GetLabels()[k]; !ok || cur != v {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	labels := maps.Clone(sec.GetLabels())
	maps.Copy(labels, d.labels)
	_, err := d.client.UpdateSecret(ctx, &secretmanagerpb.UpdateSecretRequest{
		Secret:     &secretmanagerpb.Secret{Name: sec.GetName(), Labels: labels, Etag: sec.GetEtag()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}},
	})
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.FailedPrecondition, codes.Aborted, codes.NotFound:
		return conflict("secret %s changed while its labels were updated", idOf(sec.GetName()))
	}
	return fail(ctx, "update the labels of "+idOf(sec.GetName()), err)
}

// remove deletes the secret c.Key, with the etag read, after checking
// that its version is c.Expect.
func (d *Destination) remove(ctx context.Context, c destination.Change) error {
	if err := checkID(c.Key); err != nil {
		return err
	}
	sec, err := d.getOwned(ctx, c.Key)
	if err != nil || sec == nil {
		return err // nil when already gone
	}
	name := d.secretName(c.Key)
	enabled, _, err := d.latest(ctx, name)
	if err != nil {
		return err
	}
	if enabled != 0 {
		if v := version(enabled, sec.GetCreateTime().AsTime()); v != c.Expect {
			return conflict("secret %s is at version %q, not %q", c.Key, v, c.Expect)
		}
	}
	err = d.client.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: name, Etag: sec.GetEtag()})
	switch status.Code(err) {
	case codes.OK, codes.NotFound:
		return nil
	case codes.FailedPrecondition, codes.Aborted:
		return conflict("secret %s changed before the delete (etag mismatch)", c.Key)
	}
	return fail(ctx, "delete "+c.Key, err)
}
