package vaulttest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
