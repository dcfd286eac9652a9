package httpapi_test

import (
	"crypto/tls"
	"testing"

	"github.com/secretsync/secretsync/registry/httpapi"
)

func TestHost(t *testing.T) {
	cases := []struct {
		hosts   []string
		host    string
		allowed bool
	}{
		{nil, "127.0.0.1:8200", true},
		{nil, "127.0.0.2", true},
		{nil, "localhost:8200", true},
		{nil, "LOCALHOST.:8200", true},
		{nil, "app.localhost:8200", true},
		{nil, "[::1]:8200", true},
		{nil, "[::1]", true},
		{nil, "evil.example:8200", false}, // DNS rebinding: evil.example now resolves to 127.0.0.1
		{nil, "evil.example", false},
		{nil, "localhost.evil.example", false},
		{nil, "10.0.0.5:8200", false},
		{nil, "", false},
		{[]string{"sync.internal"}, "sync.internal:8200", true},
		{[]string{"sync.internal"}, "SYNC.internal", true},
		{[]string{"sync.internal"}, "localhost:8200", false},
		{[]string{"sync.internal:9000"}, "sync.internal:9000", true},
		{[]string{"sync.internal:9000"}, "sync.internal:8200", false},
		{[]string{"10.0.0.5", "[fd00::1]:8200"}, "[fd00::1]:8200", true},
		{[]string{"10.0.0.5"}, "10.0.0.5:8200", true},
		{[]string{"*"}, "anything:1", true},
	}
	for _, c := range cases {
		f := newFixture(t, httpapi.Options{Hosts: c.hosts})
		r := newRequest("LIST", dests, "")
		r.Host = c.host
		a := f.serve(r)
		if got := a.status == 200; got != c.allowed {
			t.Errorf("Hosts %v, Host %q: %d %s", c.hosts, c.host, a.status, a.raw)
		}
		if !c.allowed && (a.status != 403 || a.errors(t)[0] != "host not allowed") {
			t.Errorf("Host %q: %d %s", c.host, a.status, a.raw)
		}
	}
}

func TestOrigin(t *testing.T) {
	cases := []struct {
		origin, fetchSite string
		tls               bool
		allowed           bool
	}{
		{"", "", false, true},
		{"http://127.0.0.1:8200", "", false, true},
		{"http://127.0.0.1:8200", "same-origin", false, true},
		{"HTTP://127.0.0.1:8200", "", false, true},
		{"https://127.0.0.1:8200", "", true, true},
		{"https://127.0.0.1:8200", "", false, false}, // another scheme is another origin
		{"http://127.0.0.1:8200", "", true, false},
		{"http://localhost:8200", "", false, false}, // the listener was reached as 127.0.0.1
		{"http://127.0.0.1:8201", "", false, false},
		{"http://evil.example", "", false, false},
		{"null", "", false, false},
		{"https://console.example.com", "cross-site", false, true}, // in Options.Origins
		{"", "cross-site", false, false},
		{"", "same-site", false, false},
		{"", "none", false, true},
	}
	f := newFixture(t, httpapi.Options{Origins: []string{"https://console.example.com"}})
	for _, c := range cases {
		for _, method := range []string{"LIST", "POST"} {
			path := dests
			if method == "POST" {
				path += "/gh/r/associations/set"
			}
			r := newRequest(method, path, `{}`)
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			if c.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", c.fetchSite)
			}
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			a := f.serve(r)
			refused := a.status == 403 && len(a.body) == 1 && a.errors(t)[0] == "cross-origin request refused"
			if refused == c.allowed {
				t.Errorf("%s Origin %q Sec-Fetch-Site %q tls %v: %d %s", method, c.origin, c.fetchSite, c.tls, a.status, a.raw)
			}
		}
	}
	// Two Origin headers are refused.
	r := newRequest("LIST", dests, "")
	r.Header.Add("Origin", "http://127.0.0.1:8200")
	r.Header.Add("Origin", "http://evil.example")
	if a := f.serve(r); a.status != 403 {
		t.Errorf("two origins: %d", a.status)
	}
	// A refused request that would have changed something is audited.
	ev := f.rec.Filter(httpapi.EventRequestDenied)
	if len(ev) == 0 || ev[0].Attrs["status"] != "403" || ev[0].Attrs["actor"] != "" {
		t.Errorf("denied events %+v", ev)
	}
	for _, e := range ev {
		if e.Attrs["method"] != "POST" {
			t.Errorf("a refused read was audited: %+v", e)
		}
	}
}

// Host and Origin are checked before the credentials: a page cannot learn
// whether a token is right.
func TestGuardBeforeAuth(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	r := newRequest("LIST", dests, "")
	r.Header.Del("X-Vault-Token")
	r.Header.Set("Origin", "http://evil.example")
	if a := f.serve(r); a.status != 403 || a.errors(t)[0] != "cross-origin request refused" {
		t.Errorf("%d %s", a.status, a.raw)
	}
}
