package httpapi

import (
	"net"
	"net/http"
	"strings"
)

// refuseOrigin returns why a request is refused for its Host, Origin or
// Sec-Fetch-Site, or "" when it may go on. The reasons name no value.
func (h *handler) refuseOrigin(r *http.Request) string {
	if !hostAllowed(h.opts.Hosts, r.Host) {
		return "host not allowed"
	}
	origins := r.Header.Values("Origin")
	switch len(origins) {
	case 0:
	case 1:
		if !h.originAllowed(r, origins[0]) {
			return "cross-origin request refused"
		}
	default:
		return "cross-origin request refused"
	}
	// Browsers send Sec-Fetch-Site on every request; "none" is a request
	// the user made (typing the address), "same-origin" the API's own.
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
	default:
		if len(origins) == 0 || !h.origins[strings.ToLower(origins[0])] {
			return "cross-origin request refused"
		}
	}
	return ""
}

// originAllowed reports whether origin is the listener's own (the scheme
// and Host of the request) or one of Options.Origins.
func (h *handler) originAllowed(r *http.Request, origin string) bool {
	origin = strings.ToLower(origin)
	if h.origins[origin] {
		return true
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return r.Host != "" && origin == scheme+"://"+strings.ToLower(r.Host)
}

// hostAllowed reports whether the Host header host is one of allowed (see
// Options.Hosts), or a loopback name or address when allowed is empty.
func hostAllowed(allowed []string, host string) bool {
	host = strings.ToLower(host)
	if host == "" {
		return false
	}
	name := host
	if n, _, err := net.SplitHostPort(host); err == nil {
		name = n
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		name = host[1 : len(host)-1]
	}
	name = strings.TrimSuffix(name, ".")
	if len(allowed) == 0 {
		return isLoopbackName(name)
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		switch {
		case a == "*":
			return true
		case strings.TrimSuffix(strings.Trim(a, "[]"), ".") == name && !hasPort(a):
			return true
		case a == host:
			return true
		}
	}
	return false
}

// hasPort reports whether a Hosts entry names a port.
func hasPort(a string) bool {
	_, _, err := net.SplitHostPort(a)
	return err == nil
}

// isLoopbackName reports whether a host name (no port, no brackets) is a
// loopback name or address.
func isLoopbackName(name string) bool {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}
