package httpapi_test

import (
	"fmt"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"

	"github.com/secretsync/secretsync/registry/httpapi"
)

// Requests of every kind at once, with a token file read again meanwhile:
// no race, and every answer is one of those expected.
func TestConcurrentRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, httpapi.Options{TokenFile: path})
	var wg gosync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			d := fmt.Sprintf("%s/gh/r%d", dests, i%3)
			for j := range 20 {
				for _, c := range []struct{ method, path, body string }{
					{"POST", d, `{"access_token":"t","repository_owner":"o","repository_name":"r"}`},
					{"POST", d + "/associations/set", fmt.Sprintf(`{"mount":"kv","secret_name":"s%d"}`, j%4)},
					{"LIST", dests, ""},
					{"GET", d + "/associations", ""},
					{"POST", d + "/associations/remove", fmt.Sprintf(`{"mount":"kv","secret_name":"s%d"}`, j%4)},
					{"DELETE", d, ""},
				} {
					a := f.do(c.method, c.path, c.body)
					switch a.status {
					case 200, 204, 400, 404: // 400 and 404: another goroutine's association or delete
					default:
						t.Errorf("%s %s: %d %s", c.method, c.path, a.status, a.raw)
					}
				}
				if i == 0 && j%5 == 0 {
					tmp := path + ".tmp"
					_ = os.WriteFile(tmp, []byte(testToken), 0o600)
					_ = os.Rename(tmp, path)
				}
			}
		})
	}
	wg.Wait()
}
