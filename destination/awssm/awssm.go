package awssm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"golang.org/x/sync/errgroup"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/internal/keylock"
)

// The tags that mark a secret as this library's.
const (
	// TagManagedBy is set to ManagedByValue on every secret the
	// destination creates.
	TagManagedBy = "managed-by"
	// ManagedByValue is the value of TagManagedBy.
	ManagedByValue = "secretsync"
	// TagOwner is set to Options.Owner on every secret the destination
	// creates.
	TagOwner = "secretsync-owner"
)

// Limits of AWS Secrets Manager that the destination checks before it
// sends a request.
const (
	// MaxNameLength is the longest secret name, in bytes.
	MaxNameLength = 512
	// MaxValueBytes is the largest SecretString, in bytes.
	MaxValueBytes = 65536
	// MaxTags is how many tags a secret can have, the two of the
	// ownership marker included.
	MaxTags = 50
)

// ErrInvalidOptions reports Options that New cannot use; the error names
// the field, never a credential.
var ErrInvalidOptions = errors.New("awssm: invalid options")

// Options configures a Destination. Region and, unless the AWS default
// configuration is meant, the access key are the only fields most
// programs set.
type Options struct {
	// Region is the AWS region of the secrets ("eu-west-1"). With an
	// access key or Credentials it is required; otherwise empty means the
	// region of the AWS default configuration.
	Region string
	// AccessKeyID and SecretAccessKey are a static access key: both or
	// neither. With neither and no Credentials, New loads the AWS default
	// configuration (config.LoadDefaultConfig: the environment, the
	// shared config and credentials files, SSO, web identity, container
	// and instance roles); that is the only case in which this package
	// reads the environment.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken goes with a temporary access key.
	SessionToken string
	// Credentials, when set, provides the credentials instead of an
	// access key (an assumed role, say).
	Credentials aws.CredentialsProvider

	// Endpoint replaces the service's endpoint (the SDK's BaseEndpoint),
	// for a VPC endpoint or a local server such as awssmtest.Server.URL.
	Endpoint string
	// HTTPClient sends the requests; nil means a client with the SDK's
	// default transport, whose idle connections Close closes.
	HTTPClient *http.Client
	// ClientOptions adjust the SDK client after the fields above were
	// applied (its retryer, say).
	ClientOptions []func(*secretsmanager.Options)

	// Owner names the sync that owns the secrets: the value of the
	// TagOwner tag on every secret the destination creates. List returns
	// only secrets tagged with it, and Apply neither overwrites nor
	// deletes a secret without it. Empty marks secrets as the library's
	// without naming a sync (TagOwner with an empty value).
	Owner string
	// Tags are set on every secret the destination creates, and put back
	// on a secret it writes when they differ (other tags are kept). At
	// most MaxTags-2 of them; keys of 1 to 128 and values of up to 256
	// characters (letters, digits, spaces and _.:/=+-@); not the aws:
	// prefix, nor the keys of the marker.
	Tags map[string]string
	// RecoveryWindowDays is how long a deleted secret can be restored, 7
	// to 30 days; 0 means 30, AWS's default.
	RecoveryWindowDays int
	// ForceDelete deletes secrets at once, with no recovery window.
	ForceDelete bool
}

// Destination is AWS Secrets Manager as a destination.Destination: one
// secret per key, named by the key, holding the value as its
// SecretString. It is safe for concurrent use.
type Destination struct {
	client   *secretsmanager.Client
	owner    string
	tags     []types.Tag       // the marker and Options.Tags, sorted by key
	custom   map[string]string // Options.Tags
	recovery int64
	force    bool
	idle     func() // closes idle connections, when the transport is ours
	closed   atomic.Bool
	// locks serializes the writes of this Destination to each key, so
	// that its own concurrent writers always see each other's versions.
	locks keylock.Map
}

var (
	_ destination.Destination   = (*Destination)(nil)
	_ destination.Describer     = (*Destination)(nil)
	_ destination.KeyNormalizer = (*Destination)(nil)
)

// New returns a Destination over the AWS Secrets Manager of options. It
// checks options (ErrInvalidOptions) and, without an access key, loads the
// AWS default configuration; it sends no request.
// A nil options means the zero Options.
func New(ctx context.Context, options *Options) (*Destination, error) {
	var opts Options
	if options != nil {
		opts = *options
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	d := &Destination{owner: opts.Owner, custom: maps.Clone(opts.Tags), force: opts.ForceDelete, recovery: int64(opts.RecoveryWindowDays)}
	if d.recovery == 0 && !d.force {
		d.recovery = 30
	}
	d.tags = []types.Tag{{Key: aws.String(TagManagedBy), Value: aws.String(ManagedByValue)}, {Key: aws.String(TagOwner), Value: aws.String(opts.Owner)}}
	for _, k := range slices.Sorted(maps.Keys(opts.Tags)) {
		d.tags = append(d.tags, types.Tag{Key: aws.String(k), Value: aws.String(opts.Tags[k])})
	}

	hc := opts.HTTPClient
	if hc == nil {
		tr := awshttp.NewBuildableClient().GetTransport()
		hc = &http.Client{Transport: tr}
		d.idle = tr.CloseIdleConnections
	}
	var cfg aws.Config
	switch {
	case opts.Credentials != nil || opts.AccessKeyID != "":
		creds := opts.Credentials
		if creds == nil {
			creds = credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)
		}
		cfg = aws.Config{Region: opts.Region, Credentials: aws.NewCredentialsCache(creds), HTTPClient: hc}
	default:
		load := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
		if opts.Region != "" {
			load = append(load, config.WithRegion(opts.Region))
		}
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx, load...); err != nil {
			return nil, fmt.Errorf("awssm: load the AWS default configuration: %w", err)
		}
		if cfg.Region == "" {
			return nil, fmt.Errorf("%w: no region in Options nor in the AWS default configuration", ErrInvalidOptions)
		}
	}
	d.client = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		for _, fn := range opts.ClientOptions {
			fn(o)
		}
	})
	return d, nil
}

func (o Options) check() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidOptions, field, why) }
	switch {
	case (o.AccessKeyID == "") != (o.SecretAccessKey == ""):
		return bad("AccessKeyID/SecretAccessKey", "must be set together")
	case o.Credentials != nil && o.AccessKeyID != "":
		return bad("Credentials", "set together with an access key")
	case (o.Credentials != nil || o.AccessKeyID != "") && o.Region == "":
		return bad("Region", "is required with explicit credentials")
	case o.RecoveryWindowDays != 0 && (o.RecoveryWindowDays < 7 || o.RecoveryWindowDays > 30):
		return bad("RecoveryWindowDays", fmt.Sprintf("%d is not between 7 and 30", o.RecoveryWindowDays))
	case o.RecoveryWindowDays != 0 && o.ForceDelete:
		return bad("ForceDelete", "set together with RecoveryWindowDays")
	case len(o.Tags) > MaxTags-2:
		return bad("Tags", fmt.Sprintf("has %d tags; at most %d fit beside the ownership marker", len(o.Tags), MaxTags-2))
	}
	if err := checkTag(TagOwner, o.Owner); err != nil {
		return bad("Owner", err.Error())
	}
	for k, v := range o.Tags {
		if k == TagManagedBy || k == TagOwner {
			return bad("Tags", fmt.Sprintf("%q is a key of the ownership marker", k))
		}
		if err := checkTag(k, v); err != nil {
			return bad("Tags", err.Error())
		}
	}
	return nil
}

// checkTag checks a tag as AWS does.
func checkTag(k, v string) error {
	ok := func(s string) bool {
		return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
			return !unicode.In(r, unicode.L, unicode.N, unicode.Z) && !strings.ContainsRune("_.:/=+-@", r)
		})
	}
	switch {
	case k == "" || utf8.RuneCountInString(k) > 128:
		return fmt.Errorf("tag key %q is not 1 to 128 characters", k)
	case utf8.RuneCountInString(v) > 256:
		return fmt.Errorf("the value of tag %q is longer than 256 characters", k)
	case strings.HasPrefix(strings.ToLower(k), "aws:"):
		return fmt.Errorf("tag key %q has the reserved prefix aws:", k)
	case !ok(k):
		return fmt.Errorf("tag key %q has a character AWS does not allow", k)
	case !ok(v):
		return fmt.Errorf("the value of tag %q has a character AWS does not allow", k)
	}
	return nil
}

// Capabilities reports NoCheckAndSet: AWS Secrets Manager has no
// conditional write (see the package documentation).
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{NoCheckAndSet: true}
}

// Close releases the idle connections of the transport New made (none
// when Options.HTTPClient was given). List and Apply fail after Close.
func (d *Destination) Close() error {
	if d.closed.CompareAndSwap(false, true) && d.idle != nil {
		d.idle()
	}
	return nil
}

var errClosed = errors.New("awssm: destination closed")

// owns reports whether tags carry this destination's ownership marker.
func (d *Destination) owns(tags []types.Tag) bool {
	managed, owner := false, false
	for _, t := range tags {
		switch aws.ToString(t.Key) {
		case TagManagedBy:
			managed = aws.ToString(t.Value) == ManagedByValue
		case TagOwner:
			owner = aws.ToString(t.Value) == d.owner
		}
	}
	return managed && owner
}

// current returns the version that has label in a version map of
// DescribeSecret or ListSecrets.
func current(versions map[string][]string, label string) string {
	for id, stages := range versions {
		if slices.Contains(stages, label) {
			return id
		}
	}
	return ""
}

const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	listPageSize  = 100 // ListSecrets' largest page
	batchSize     = 20  // BatchGetSecretValue's most ids
)

// List returns the secrets tagged with the destination's marker that have
// a current version: their names, SecretStrings and AWSCURRENT version ids.
// It pages through ListSecrets (filtered by the marker's tag key and
// owner, then checked exactly), then reads the values with
// BatchGetSecretValue, 20 secrets a call. A secret deleted meanwhile is
// left out.
func (d *Destination) List(ctx context.Context) (map[string]destination.Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.closed.Load() {
		return nil, errClosed
	}
	filters := []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{TagOwner}}}
	if d.owner != "" && filterable(d.owner) {
		filters = append(filters, types.Filter{Key: types.FilterNameStringTypeTagValue, Values: []string{d.owner}})
	}
	var arns []string
	p := secretsmanager.NewListSecretsPaginator(d.client, &secretsmanager.ListSecretsInput{
		Filters:    filters,
		MaxResults: aws.Int32(listPageSize),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, d.fail(ctx, "list secrets", err)
		}
		for _, s := range page.SecretList {
			if s.DeletedDate != nil || !d.owns(s.Tags) || current(s.SecretVersionsToStages, stageCurrent) == "" {
				continue
			}
			arns = append(arns, aws.ToString(s.ARN))
		}
	}

	out := make(map[string]destination.Secret, len(arns))
	var mu gosync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for chunk := range slices.Chunk(arns, batchSize) {
		g.Go(func() error {
			res, err := d.client.BatchGetSecretValue(gctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: chunk})
			if err != nil {
				return d.fail(gctx, "read secrets", err)
			}
			for _, e := range res.Errors {
				switch aws.ToString(e.ErrorCode) {
				case "ResourceNotFoundException", "InvalidRequestException":
					// Deleted (or scheduled for deletion) since it was listed.
				case accessDenied:
					return fmt.Errorf("awssm: read secret %s: %s: %s: %s", aws.ToString(e.SecretId), deniedHint, aws.ToString(e.ErrorCode), aws.ToString(e.Message))
				default:
					return fmt.Errorf("awssm: read secret %s: %s: %s", aws.ToString(e.SecretId), aws.ToString(e.ErrorCode), aws.ToString(e.Message))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range res.SecretValues {
				val := aws.ToString(v.SecretString)
				if v.SecretString == nil {
					val = string(v.SecretBinary) // written by someone else; kept byte for byte
				}
				out[aws.ToString(v.Name)] = destination.Secret{Value: val, Version: aws.ToString(v.VersionId)}
			}
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

// filterable reports whether s can be a value of a ListSecrets filter.
func filterable(s string) bool {
	if len(s) > 512 || strings.HasPrefix(s, "!") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" :_@/+=.-!", r))
	})
}
