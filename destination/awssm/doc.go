// Package awssm is AWS Secrets Manager as a destination of a sync, on the
// official SDK (github.com/aws/aws-sdk-go-v2/service/secretsmanager). It
// is the driver of the registry's aws-sm destination type
// (registry.AWSSecretsManager, through Driver), and can be opened without
// a registry with New.
//
// Each key is one secret, named by the key, holding the value as its
// SecretString. With the registry's default secret-path granularity a key
// is a whole KV v2 secret, written as one JSON object; with secret-key
// granularity it is one field.
//
// # Connecting
//
// Options.Region and a static access key (AccessKeyID, SecretAccessKey,
// and SessionToken for a temporary one) or an aws.CredentialsProvider; or
// no credentials at all, and New loads the AWS default configuration
// (environment, shared files, SSO, web identity, container and instance
// roles), which may supply the region too. Options.Endpoint replaces the
// service endpoint (a VPC endpoint, or awssmtest.Server.URL in tests);
// Options.HTTPClient and ClientOptions adjust the transport and the SDK
// client. The SDK's standard retryer is kept: three attempts, exponential
// backoff with jitter, for throttling, 5xx answers and connection errors.
//
// # IAM permissions
//
// The destination calls these actions of Secrets Manager, and needs every
// one of them:
//
//	secretsmanager:ListSecrets          List: the secrets with the marker
//	secretsmanager:BatchGetSecretValue  List: their values, 20 secrets a call
//	secretsmanager:GetSecretValue       List: on each secret BatchGetSecretValue reads
//	secretsmanager:DescribeSecret       Apply: tags and versions, before and after each write
//	secretsmanager:CreateSecret         Apply: a new key
//	secretsmanager:TagResource          Apply: a new key (CreateSecret with tags needs it); Options.Tags put back
//	secretsmanager:PutSecretValue       Apply: an update; a name of ours reused
//	secretsmanager:DeleteSecret         Apply: a deleted key, with a recovery window or ForceDelete
//	secretsmanager:RestoreSecret        Apply: reusing a name of ours scheduled for deletion
//
// ListSecrets and BatchGetSecretValue take no resource ("*"). The others
// can be scoped to the names the syncs write (the name template's prefix,
// "vault/" by default), and to the ownership marker: with
// aws:ResourceTag, except DescribeSecret (see below) and the actions of a
// create, CreateSecret and the TagResource it implies, which have no
// resource tags yet and are scoped with aws:RequestTag instead. A policy
// along these lines (replace REGION and ACCOUNT):
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [
//	    {
//	      "Sid": "List",
//	      "Effect": "Allow",
//	      "Action": ["secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue"],
//	      "Resource": "*"
//	    },
//	    {
//	      "Sid": "Describe",
//	      "Effect": "Allow",
//	      "Action": "secretsmanager:DescribeSecret",
//	      "Resource": "arn:aws:secretsmanager:REGION:ACCOUNT:secret:vault/*"
//	    },
//	    {
//	      "Sid": "CreateMarked",
//	      "Effect": "Allow",
//	      "Action": ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
//	      "Resource": "arn:aws:secretsmanager:REGION:ACCOUNT:secret:vault/*",
//	      "Condition": {"StringEquals": {"aws:RequestTag/managed-by": "secretsync"}}
//	    },
//	    {
//	      "Sid": "WriteOwn",
//	      "Effect": "Allow",
//	      "Action": [
//	        "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
//	        "secretsmanager:DeleteSecret", "secretsmanager:RestoreSecret",
//	        "secretsmanager:TagResource"
//	      ],
//	      "Resource": "arn:aws:secretsmanager:REGION:ACCOUNT:secret:vault/*",
//	      "Condition": {"StringEquals": {"aws:ResourceTag/managed-by": "secretsync"}}
//	    }
//	  ]
//	}
//
// DescribeSecret is left without the tag condition so that a name taken by
// someone else's secret is reported as destination.ErrNotOwned rather than
// AccessDeniedException; it returns no value. The CreateMarked statement
// lets the role put the marker on any secret under the prefix it can
// name: keep the prefix to the syncs' own names. WriteOwn does not tell
// one sync's secrets from another's; the destination itself keeps to its
// own (see Ownership marker). Secrets are encrypted with the AWS managed
// key aws/secretsmanager, which needs no KMS permission.
//
// TestIAMPermissions checks this section against package awssmtest, which
// evaluates identity-based policies as IAM does (actions, resource ARNs,
// StringEquals and StringLike on aws:RequestTag and aws:ResourceTag). It
// reads the list and the policy above from this file, checks that the
// policy grants exactly the actions listed, and runs a life cycle through
// the destination: create (with Options.Tags), List, an update that puts
// back a changed Options.Tags tag, a delete with a recovery window, a
// create of the same name (RestoreSecret), and a delete with ForceDelete.
// The cycle succeeds with an access key allowed exactly the listed actions
// and fails, with an error naming the action, without any one of them; it
// succeeds under the policy above, which denies reading, writing and
// deleting a secret without the marker and creating one outside the
// prefix, while the destination reports someone else's secret under the
// prefix as ErrNotOwned. What the test cannot show is AWS's own
// evaluation: resource policies, service control policies, permission
// boundaries, session policies and KMS key policies are not modelled, nor
// the claim about the managed key.
//
// # Ownership marker
//
// Every secret the destination creates carries the tags managed-by =
// secretsync and secretsync-owner = Options.Owner (the association's sync
// name in a registry; empty for Options.Owner ""), beside Options.Tags
// (the config's custom tags). List asks ListSecrets for the secrets with a
// secretsync-owner tag key and a tag value starting with the owner, then
// keeps those whose two tags match exactly. Apply reads the tags with
// DescribeSecret before each update or delete, and after a create that
// finds the name taken: a secret without the exact marker is neither
// written nor deleted (destination.ErrNotOwned), nor restored when it is
// scheduled for deletion. Removing the marker from a secret hands it back:
// the sync no longer lists or touches it.
//
// # Names
//
// A secret name is 1 to 512 bytes of ASCII letters, digits and /_+=.@- (see
// CheckKey); the destination also applies destination.CheckKey (no empty,
// "." or ".." segment, no leading '/'). Apply refuses any other key with
// destination.ErrInvalidKey; NormalizeKey, which the registry applies to
// the names it renders from its template, maps other characters to '_',
// drops empty segments and renames "." and ".." segments. AWS advises
// against names that end with a hyphen and six characters, which IAM
// policies and partial ARNs can mistake for the random suffix of an ARN.
//
// # Values
//
// A SecretString holds 1 to 65,536 bytes of UTF-8 text: an empty value, a
// longer one, or one that is not valid UTF-8 is refused with
// destination.ErrInvalidValue, before any request; every other string,
// control characters included, round-trips exactly. A secret of ours that
// someone gave a SecretBinary is listed with those bytes as its value.
// Versions are AWS's VersionIds: List reports the AWSCURRENT version of
// each secret.
//
// # Deletion
//
// Apply deletes with DeleteSecret and a recovery window
// (Options.RecoveryWindowDays, 7 to 30 days, 30 by default): the secret
// is then scheduled for deletion, no longer listed, readable or writable,
// and can be restored by RestoreSecret until the window ends. With
// Options.ForceDelete it is deleted at once, with no recovery. A create
// whose name is taken by a secret of ours scheduled for deletion restores
// it, then writes the new value as a new version. Deleting a secret that is
// gone, or already scheduled for deletion, succeeds.
//
// # Without check-and-set
//
// Secrets Manager cannot make a write conditional, so the destination
// reports destination.Capabilities.NoCheckAndSet and narrows the race as
// far as the service allows:
//
//   - A create is one CreateSecret, which fails when the name exists: no
//     window.
//   - An update reads the secret's versions with DescribeSecret just
//     before the write and refuses (destination.ErrConflict) when
//     AWSCURRENT is not Change.Expect; writes with PutSecretValue and a
//     fresh ClientRequestToken (a random UUID, which the SDK's retries
//     send again, so that a retried write makes one version); then reads
//     the versions again and reports ErrConflict unless its version is
//     AWSCURRENT and the version it replaced, now AWSPREVIOUS, is Expect.
//     A writer that gets in between the read and the write is thus not
//     lost silently: its version stays as AWSPREVIOUS (and in the version
//     history), ours is current, and the change is reported as a conflict,
//     so the engine looks at the key again next round. A writer that gets
//     in after our write and before the check makes the check report a
//     conflict as well.
//   - A delete reads the versions, deletes, and with a recovery window
//     reads them again: if a version came in between, the secret is
//     restored and the change reported as a conflict. With ForceDelete a
//     version written in that window is deleted with the secret: that is
//     the window that remains.
//   - A create that restores a secret scheduled for deletion leaves the
//     old value readable between RestoreSecret and PutSecretValue; if the
//     write fails, the destination schedules the secret for deletion again
//     (best effort: a crash in between leaves it restored with the old
//     value, which the next round sees as a change at the destination).
//   - The writes of one Destination to one key are serialized, so that
//     writers sharing it always see each other's versions.
//
// ListSecrets is eventually consistent: a secret created just before a
// List may be missing from it, and the engine's create of it then meets
// ResourceExistsException and reports a conflict until a List shows it.
//
// # Requests
//
// List is ⌈n/100⌉ ListSecrets and ⌈n/20⌉ BatchGetSecretValue for n owned
// secrets. A create is one CreateSecret; an update is DescribeSecret,
// PutSecretValue and DescribeSecret (plus TagResource when Options.Tags
// were changed on the secret); a delete is DescribeSecret, DeleteSecret
// and DescribeSecret (two requests with ForceDelete); reusing a name
// scheduled for deletion is CreateSecret, DescribeSecret, RestoreSecret,
// PutSecretValue and DescribeSecret. Measured through a sync.Syncer
// (TestRequestsPerKey, 50 keys): creating them takes 51 requests (1.02 per
// key), updating them 154 (3.08 per key), an idle round 4 (0.08 per key),
// deleting them 154. A registry association of one secret (secret-path
// granularity: one entry) takes 2 requests to create the entry, 5 to
// update it, 2 for an idle refresh and 5 to remove it
// (TestRegistryAssociationFromVault).
//
// # Errors
//
// Apply returns one result per change: nil, or a *destination.KeyError
// wrapping destination.ErrConflict, ErrNotOwned, ErrInvalidKey,
// ErrInvalidValue, ErrUnavailable or the SDK's error (whose message never
// holds a value). An error that says the service as a whole cannot serve
// after the SDK's retries (throttling, a 5xx or 429 answer, a request that
// could not be sent or timed out) also matches destination.ErrUnavailable,
// and stops Apply: the changes not attempted get the stopping error, which
// is returned as the call's error too. A cancelled context is returned as
// it is. LimitExceededException (a quota, such as versions per secret) is
// an error of its key.
//
// AccessDeniedException (an IAM policy that does not allow an action) is
// an error of its key too, not ErrUnavailable, and Apply goes on with the
// next change: a policy can be scoped by name and tag, so another key may
// well be allowed; the message names the action and the resource. In
// List, it is the call's error (a secret denied to GetSecretValue
// included). Credentials that AWS refuses outright
// (UnrecognizedClientException, InvalidSignatureException,
// ExpiredTokenException and the like) fail every key alike: Apply stops
// at the first such error, as at ErrUnavailable, but the error does not
// match ErrUnavailable, since retrying will not help until the
// credentials are fixed.
//
// # Testing
//
// Package awssmtest is a local Secrets Manager that speaks the service's
// wire protocol to the SDK; point Options.Endpoint and HTTPClient at it.
// Its NewAccessKey, Allow and SetPolicy give an access key an IAM policy,
// as TestIAMPermissions does.
package awssm
