package awssm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/destination"
	"github.com/secretsync/secretsync/destination/awssm"
	"github.com/secretsync/secretsync/destination/awssm/awssmtest"
)

// docIAM reads the section "IAM permissions" of the package
// documentation: the actions it lists, and its sample policy.
func docIAM(t *testing.T) (actions []string, policy string) {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "// # IAM permissions\n")
	if !ok {
		t.Fatal("doc.go has no section IAM permissions")
	}
	section, _, _ = strings.Cut(section, "\n// # ")
	row := regexp.MustCompile(`^//\t(secretsmanager:[A-Za-z]+) {2,}\S`)
	var lines []string
	inPolicy := false
	for line := range strings.SplitSeq(section, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			actions = append(actions, m[1])
		}
		switch {
		case line == "//\t{":
			inPolicy = true
		case !inPolicy:
			continue
		}
		lines = append(lines, strings.TrimPrefix(line, "//\t"))
		if line == "//\t}" {
			break
		}
	}
	if len(actions) == 0 || len(lines) == 0 {
		t.Fatalf("doc.go: %d actions, %d lines of policy", len(actions), len(lines))
	}
	return actions, strings.Join(lines, "\n")
}

// policyActions returns the actions a policy document grants, sorted.
func policyActions(t *testing.T, doc string) []string {
	t.Helper()
	var p struct {
		Statement []struct {
			Effect string
			Action json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("the sample policy: %v", err)
	}
	set := map[string]bool{}
	for _, st := range p.Statement {
		var list []string
		if json.Unmarshal(st.Action, &list) != nil {
			var one string
			if err := json.Unmarshal(st.Action, &one); err != nil {
				t.Fatalf("Action %s: %v", st.Action, err)
			}
			list = []string{one}
		}
		for _, a := range list {
			set[a] = st.Effect == "Allow"
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// limitedOptions returns the Options that reach srv with the access key
// id of a user the test restricts.
func limitedOptions(srv *awssmtest.Server, id, key string) awssm.Options {
	o := options(srv, "sync-1")
	o.AccessKeyID, o.SecretAccessKey = id, key
	o.Tags = map[string]string{"team": "payments"}
	return o
}

const iamKey = "vault/kv_1a2b/app/db"

// iamCycle runs through the destination every path of the package
// documentation's list of actions, as the access key id: create, List, an
// update that puts back a changed Options.Tags tag, a delete with a
// recovery window, a create of the same name (RestoreSecret), and a
// delete with ForceDelete. It returns the first error, naming its step.
func iamCycle(t *testing.T, srv *awssmtest.Server, id, key string) error {
	ctx := context.Background()
	o := limitedOptions(srv, id, key)
	d := open(t, o)
	o.ForceDelete = true
	force := open(t, o)
	k := iamKey
	one := func(d *awssm.Destination, c destination.Change) error {
		errs, err := d.Apply(ctx, []destination.Change{c})
		if err != nil {
			return fmt.Errorf("Apply stopped: %w", err)
		}
		return errs[0]
	}
	listed := func(want string) (string, error) {
		m, err := d.List(ctx)
		if err != nil {
			return "", err
		}
		if s := m[k]; s.Value != want {
			return "", fmt.Errorf("listed %q with value %q, want %q", k, s.Value, want)
		}
		return m[k].Version, nil
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"create", func() error { return one(d, put(k, "v1", "")) }},
		{"list", func() error { _, err := listed("v1"); return err }},
		{"update, putting back Options.Tags", func() error {
			v, err := listed("v1")
			if err != nil {
				return err
			}
			s, _ := srv.Get(k)
			s.Tags["team"] = "changed"
			srv.SetTags(k, s.Tags)
			return one(d, put(k, "v2", v))
		}},
		{"delete with a recovery window", func() error {
			v, err := listed("v2")
			if err != nil {
				return err
			}
			return one(d, del(k, v))
		}},
		{"create of a name scheduled for deletion", func() error { return one(d, put(k, "v3", "")) }},
		{"delete with ForceDelete", func() error {
			v, err := listed("v3")
			if err != nil {
				return err
			}
			return one(force, del(k, v))
		}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}

// TestIAMPermissions proves the section "IAM permissions" of the package
// documentation (see there what it proves and what it cannot).
func TestIAMPermissions(t *testing.T) {
	actions, policy := docIAM(t)
	if got, want := policyActions(t, policy), slices.Sorted(slices.Values(actions)); !slices.Equal(got, want) {
		t.Fatalf("the sample policy grants %v; the list names %v", got, want)
	}

	t.Run("exactly the listed actions", func(t *testing.T) {
		srv := newServer(t, awssmtest.Options{})
		id, key := srv.NewAccessKey("secretsync")
		srv.Allow(id, actions...)
		if err := iamCycle(t, srv, id, key); err != nil {
			t.Fatalf("with the listed actions: %v", err)
		}
		if s, ok := srv.Get(iamKey); ok {
			t.Fatalf("after the cycle: %+v", s)
		}
		// Every path ran: each action's operation was called (but
		// GetSecretValue, which BatchGetSecretValue implies).
		counts := srv.Counts()
		for _, a := range actions {
			if op := strings.TrimPrefix(a, "secretsmanager:"); op != "GetSecretValue" && counts[op] == 0 {
				t.Errorf("the cycle never called %s", op)
			}
		}
	})

	for _, missing := range actions {
		t.Run("without "+missing, func(t *testing.T) {
			srv := newServer(t, awssmtest.Options{})
			id, key := srv.NewAccessKey("secretsync")
			srv.Allow(id, slices.DeleteFunc(slices.Clone(actions), func(a string) bool { return a == missing })...)
			err := iamCycle(t, srv, id, key)
			switch {
			case err == nil:
				t.Fatalf("the cycle succeeded, so the package documentation lists %s in vain", missing)
			case !strings.Contains(err.Error(), "is not authorized to perform: "+missing+" "):
				t.Fatalf("the error does not name %s: %v", missing, err)
			case errors.Is(err, destination.ErrUnavailable) || strings.Contains(err.Error(), "Apply stopped"):
				t.Fatalf("a denied action stopped Apply or matched ErrUnavailable: %v", err)
			}
		})
	}

	t.Run("the sample policy", func(t *testing.T) {
		srv := newServer(t, awssmtest.Options{})
		id, key := srv.NewAccessKey("secretsync")
		doc := strings.NewReplacer("REGION", srv.Region(), "ACCOUNT", awssmtest.DefaultAccountID).Replace(policy)
		if err := srv.SetPolicy(id, doc); err != nil {
			t.Fatal(err)
		}
		if err := iamCycle(t, srv, id, key); err != nil {
			t.Fatalf("under the sample policy: %v", err)
		}

		// Someone else's secret under the prefix is ErrNotOwned, not
		// AccessDeniedException; the policy alone keeps the role from it.
		const theirs = "vault/kv_1a2b/theirs"
		srv.Put(theirs, "x", map[string]string{"team": "payments"})
		d := open(t, limitedOptions(srv, id, key))
		for _, c := range []destination.Change{put(theirs, "y", ""), put(theirs, "y", "v"), del(theirs, "v")} {
			if err := applyOne(t, d, c); !errors.Is(err, destination.ErrNotOwned) {
				t.Errorf("%v over someone else's secret: %v, want ErrNotOwned", c, err)
			}
		}
		c := srv.Client(fastRetries, func(o *secretsmanager.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(id, key, "")
		})
		ctx := context.Background()
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(theirs), SecretString: aws.String("y")})
		wantDenied(t, "PutSecretValue to someone else's secret", err, "secretsmanager:PutSecretValue")
		_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(theirs)})
		wantDenied(t, "GetSecretValue of someone else's secret", err, "secretsmanager:GetSecretValue")
		_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(theirs)})
		wantDenied(t, "DeleteSecret of someone else's secret", err, "secretsmanager:DeleteSecret")
		if s, _ := srv.Get(theirs); s.Value != "x" || s.Deleted {
			t.Fatalf("someone else's secret changed: %+v", s)
		}

		// Outside the prefix, nothing can be created.
		err = applyOne(t, d, put("elsewhere/db", "v", ""))
		if err == nil || !strings.Contains(err.Error(), "is not authorized to perform: secretsmanager:CreateSecret ") {
			t.Fatalf("create outside the prefix: %v", err)
		}
	})
}

func wantDenied(t *testing.T, what string, err error, action string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !strings.Contains(api.ErrorMessage(), "perform: "+action+" ") {
		t.Errorf("%s: %v, want AccessDeniedException for %s", what, err, action)
	}
}

// AccessDeniedException is the error of its key: Apply goes on with the
// next change, and nothing matches ErrUnavailable. In List it is the
// call's error.
func TestAccessDeniedPerKey(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	id, key := srv.NewAccessKey("secretsync")
	d := open(t, limitedOptions(srv, id, key))
	mustApply(t, d, put("a", "1", ""), put("b", "1", ""))
	m := list(t, d)
	all := []string{"secretsmanager:ListSecrets", "secretsmanager:BatchGetSecretValue", "secretsmanager:GetSecretValue",
		"secretsmanager:DescribeSecret", "secretsmanager:CreateSecret", "secretsmanager:TagResource"}
	srv.Allow(id, all...) // no PutSecretValue
	srv.ResetCounts()
	errs, err := d.Apply(context.Background(), []destination.Change{put("a", "2", m["a"].Version), put("b", "2", m["b"].Version), put("c", "1", "")})
	if err != nil {
		t.Fatalf("Apply stopped: %v", err)
	}
	for i, e := range errs[:2] {
		var ke *destination.KeyError
		if !errors.As(e, &ke) || errors.Is(e, destination.ErrUnavailable) || !strings.Contains(e.Error(), "not allowed by IAM") ||
			!strings.Contains(e.Error(), "is not authorized to perform: secretsmanager:PutSecretValue on resource: "+ke.Key+" ") {
			t.Errorf("change %d: %v", i, e)
		}
	}
	if errs[2] != nil || srv.Count("PutSecretValue") != 2 {
		t.Fatalf("the create after two denied updates: %v (PutSecretValue sent %d times)", errs[2], srv.Count("PutSecretValue"))
	}

	srv.Allow(id, slices.DeleteFunc(all, func(a string) bool { return a == "secretsmanager:GetSecretValue" })...)
	if _, err := d.List(context.Background()); err == nil || errors.Is(err, destination.ErrUnavailable) ||
		!strings.Contains(err.Error(), "not allowed by IAM") || !strings.Contains(err.Error(), "secretsmanager:GetSecretValue") {
		t.Fatalf("List without GetSecretValue: %v", err)
	}
}

// Credentials AWS refuses fail every key alike: Apply stops at the first,
// without ErrUnavailable.
func TestRefusedCredentials(t *testing.T) {
	srv := newServer(t, awssmtest.Options{})
	for name, o := range map[string]awssm.Options{
		"unknown key":      limitedOptions(srv, "AKIAUNKNOWNKEY000000", "secret"),
		"wrong secret key": limitedOptions(srv, awssmtest.DefaultAccessKeyID, "wrong"),
	} {
		t.Run(name, func(t *testing.T) {
			d := open(t, o)
			srv.ResetCounts()
			errs, err := d.Apply(context.Background(), []destination.Change{put("a", "1", ""), put("b", "1", "")})
			if err == nil || errors.Is(err, destination.ErrUnavailable) || !strings.Contains(err.Error(), "AWS refused the credentials") {
				t.Fatalf("Apply = %v, %v; want it stopped by refused credentials", errs, err)
			}
			if errs[0] == nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "not attempted") {
				t.Fatalf("results %v", errs)
			}
			if n := srv.Count("CreateSecret"); n != 1 {
				t.Fatalf("%d CreateSecret sent, want 1", n)
			}
		})
	}
}
