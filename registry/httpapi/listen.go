package httpapi

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrPlaintext is returned by Listen for an address beyond loopback with
// no TLS configuration, unless plain HTTP is allowed explicitly.
var ErrPlaintext = errors.New("httpapi: refusing to serve plain HTTP beyond loopback")

// Listen listens on the TCP address addr ("127.0.0.1:8200", "[::1]:8200",
// "localhost:8200", ":8443") for the handler. With tlsConfig the listener
// serves TLS (1.2 at least), and it must hold a certificate (Certificates,
// GetCertificate or GetConfigForClient). Without it, Listen refuses
// (ErrPlaintext) an address that is not a loopback address or "localhost",
// unless allowPlaintextNonLoopback is set: a token sent in plain text over
// a network can be read by anyone on its path. The address the listener
// is bound to is checked as well, after binding.
func Listen(addr string, tlsConfig *tls.Config, allowPlaintextNonLoopback bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: listen address %q: %w", addr, err)
	}
	plainChecked := tlsConfig == nil && !allowPlaintextNonLoopback
	if plainChecked && !isLoopbackName(strings.ToLower(host)) {
		return nil, fmt.Errorf("%w: %q is not a loopback address (give a TLS configuration, or allow plain HTTP explicitly)", ErrPlaintext, addr)
	}
	if tlsConfig != nil && len(tlsConfig.Certificates) == 0 && tlsConfig.GetCertificate == nil && tlsConfig.GetConfigForClient == nil {
		return nil, errors.New("httpapi: the TLS configuration has no certificate")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	if plainChecked {
		if ta, ok := l.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			l.Close()
			return nil, fmt.Errorf("%w: %q is bound to %s", ErrPlaintext, addr, l.Addr())
		}
	}
	if tlsConfig == nil {
		return l, nil
	}
	cfg := tlsConfig.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return tls.NewListener(l, cfg), nil
}
