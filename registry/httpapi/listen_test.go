package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/secretsync/secretsync/registry/httpapi"
)

func TestListenRefusesPlaintextBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0"} {
		l, err := httpapi.Listen(addr, nil, false)
		if !errors.Is(err, httpapi.ErrPlaintext) {
			t.Errorf("Listen(%q, nil, false): %v, want ErrPlaintext", addr, err)
		}
		if l != nil {
			l.Close()
		}
	}
	if _, err := httpapi.Listen("no-port", nil, false); err == nil {
		t.Error("an address without a port was accepted")
	}
	if _, err := httpapi.Listen("127.0.0.1:0", &tls.Config{}, false); err == nil {
		t.Error("a TLS configuration without a certificate was accepted")
	}
}

func TestListenAllowed(t *testing.T) {
	cert := selfSigned(t)
	for _, c := range []struct {
		addr  string
		tls   *tls.Config
		allow bool
	}{
		{"127.0.0.1:0", nil, false},
		{"localhost:0", nil, false},
		{"0.0.0.0:0", nil, true},
		{"LOCALHOST:0", nil, false},
		{"0.0.0.0:0", &tls.Config{Certificates: []tls.Certificate{cert}}, false},
	} {
		l, err := httpapi.Listen(c.addr, c.tls, c.allow)
		if err != nil {
			t.Errorf("Listen(%q, tls %v, %v): %v", c.addr, c.tls != nil, c.allow, err)
			continue
		}
		l.Close()
	}
}

// The handler behind Listen, over plain HTTP on loopback and over TLS:
// the listener's own Host and Origin are served.
func TestListenServes(t *testing.T) {
	f := newFixture(t, httpapi.Options{})
	cert := selfSigned(t)
	for _, tc := range []*tls.Config{nil, {Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS13}} {
		l, err := httpapi.Listen("127.0.0.1:0", tc, false)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: f.h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		scheme := "http"
		client := &http.Client{Timeout: 5 * time.Second}
		if tc != nil {
			scheme = "https"
			pool := x509.NewCertPool()
			leaf, _ := x509.ParseCertificate(cert.Certificate[0])
			pool.AddCert(leaf)
			client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		}
		origin := scheme + "://" + l.Addr().String()
		req, _ := http.NewRequest("LIST", origin+dests, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Origin", origin)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", origin, resp.StatusCode)
		}
		srv.Close()
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
