package vaulttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/secretsync/secretsync/vaultkv/vaulttest"
)

// A Proxy in front of a server makes it look frozen to the clients that go
// through it, as a server stopped with SIGSTOP would.
func ExampleProxy() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer server.Close()
	p, err := vaulttest.NewProxy(server.Listener.Addr().String())
	if err != nil {
		panic(err)
	}
	defer p.Close()

	client := &http.Client{Timeout: 200 * time.Millisecond}
	p.Freeze()
	_, err = client.Get(p.URL())
	fmt.Println("frozen, timed out:", errors.Is(err, context.DeadlineExceeded))

	p.Thaw()
	resp, err := client.Get(p.URL())
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("thawed:", resp.Status)
	// Output:
	// frozen, timed out: true
	// thawed: 200 OK
}

// A RequestProxy in front of a server sees every request and decides the
// fate of each: here, writes to secret/data/ are dropped, as by a link that
// dies, and the rest go through. In a test, srv.RequestProxy(t) puts one in
// front of a real Vault.
func ExampleRequestProxy() {
	vault := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "answer to ", r.Method, " ", r.URL.Path)
	}))
	defer vault.Close()
	p, err := vaulttest.NewRequestProxy(vault.URL)
	if err != nil {
		panic(err)
	}
	defer p.Close()

	p.Intercept(func(r *http.Request) vaulttest.Verdict {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/secret/data/") {
			return vaulttest.Drop
		}
		return vaulttest.Forward
	})
	resp, err := http.Get(p.URL() + "/v1/secret/data/app")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))

	req, _ := http.NewRequest(http.MethodPut, p.URL()+"/v1/secret/data/app", strings.NewReader(`{"data":{}}`))
	_, err = http.DefaultClient.Do(req)
	fmt.Println("write answered:", err == nil)

	fmt.Println(p.Count("secret/data/app"), "requests:", p.Log())
	// Output:
	// answer to GET /v1/secret/data/app
	// write answered: false
	// 2 requests: [GET secret/data/app PUT secret/data/app]
}
