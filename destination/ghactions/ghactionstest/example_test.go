package ghactionstest_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/google/go-github/v84/github"
	"golang.org/x/crypto/nacl/box"

	"github.com/secretsync/secretsync/destination/ghactions/ghactionstest"
)

// A test of code that writes GitHub Actions secrets with go-github: point
// the client at the server, then look at what GitHub would hold.
func ExampleServer() {
	ctx := context.Background()
	srv := ghactionstest.NewServer(nil)
	defer srv.Close()
	secrets := srv.AddRepository("octo-org", "octo-repo").Secrets()

	gh, _ := github.NewClient(srv.Client()).WithAuthToken(srv.Token).WithEnterpriseURLs(srv.URL, srv.URL)
	key, _, err := gh.Actions.GetRepoPublicKey(ctx, "octo-org", "octo-repo")
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, _ := base64.StdEncoding.DecodeString(key.GetKey())
	sealed, _ := box.SealAnonymous(nil, []byte("s3cr3t"), (*[32]byte)(raw), rand.Reader)
	resp, err := gh.Actions.CreateOrUpdateRepoSecret(ctx, "octo-org", "octo-repo", &github.EncryptedSecret{
		Name: "deploy_token", KeyID: key.GetKeyID(), EncryptedValue: base64.StdEncoding.EncodeToString(sealed),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("status:", resp.StatusCode)

	s, _ := secrets.Get("DEPLOY_TOKEN")
	fmt.Println(s.Name, "=", s.Value)
	fmt.Println("requests:", srv.Count(ghactionstest.OpGetPublicKey), srv.Count(ghactionstest.OpPutSecret))
	// Output:
	// status: 201
	// DEPLOY_TOKEN = s3cr3t
	// requests: 1 1
}
