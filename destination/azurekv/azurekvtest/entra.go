package azurekvtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// vaultResources are the Key Vault resources of the Azure clouds, by the
// suffix of their vaults' host names.
var vaultResources = []struct{ hostSuffix, resource, authority string }{
	{".vault.azure.cn", "https://vault.azure.cn", "https://login.chinacloudapi.cn"},
	{".vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net", "https://login.microsoftonline.us"},
	// Key Vault in the public cloud names login.windows.net in its
	// challenge; the default, for any other host.
	{"", "https://vault.azure.net", "https://login.windows.net"},
}

// resourceOf returns the Key Vault resource and the Entra authority of a
// vault host.
func resourceOf(host string) (resource, authority string) {
	host = strings.ToLower(hostOnly(host))
	for _, r := range vaultResources {
		if r.hostSuffix == "" || strings.HasSuffix(host, r.hostSuffix) {
			return r.resource, r.authority
		}
	}
	panic("unreachable")
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// entraOp returns the Entra operation of a request and its tenant.
func entraOp(r *http.Request, segs []string) (op, tenant string) {
	switch {
	case r.Method == http.MethodGet && len(segs) == 3 && segs[0] == "common" && segs[1] == "discovery" && segs[2] == "instance":
		return OpInstanceDiscovery, ""
	case r.Method == http.MethodGet && len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration":
		return OpOpenIDConfig, segs[0]
	case r.Method == http.MethodPost && len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token":
		return OpToken, segs[0]
	}
	return OpUnknown, ""
}

// entraError writes an error as Microsoft Entra does.
func entraError(w http.ResponseWriter, status int, code string, aadsts int, desc string) int {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, newID(), newID(), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          newID(),
		"correlation_id":    newID(),
	})
	return status
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return status
}

func (s *Server) tenantMatches(tenant string) bool { return strings.EqualFold(tenant, s.opts.TenantID) }

// serveEntra answers an Entra request.
func (s *Server) serveEntra(w http.ResponseWriter, r *http.Request, op, tenant string) int {
	host := r.Host
	switch op {
	case OpInstanceDiscovery:
		// MSAL asks this for an authority host it does not know.
		ae, err := url.Parse(r.URL.Query().Get("authorization_endpoint"))
		if err != nil || ae.Host == "" {
			return entraError(w, http.StatusBadRequest, "invalid_instance", 50049, "Unknown or invalid instance.")
		}
		t, _, _ := strings.Cut(strings.TrimPrefix(ae.Path, "/"), "/")
		return writeJSON(w, http.StatusOK, map[string]any{
			"tenant_discovery_endpoint": "https://" + ae.Host + "/" + t + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata": []map[string]any{{
				"preferred_network": ae.Host, "preferred_cache": ae.Host, "aliases": []string{ae.Host},
			}},
		})
	case OpOpenIDConfig:
		if !s.tenantMatches(tenant) {
			return entraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		}
		base := "https://" + host + "/" + tenant
		return writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":                        base + "/oauth2/v2.0/token",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"jwks_uri":                              "https://" + host + "/" + tenant + "/discovery/v2.0/keys",
			"response_modes_supported":              []string{"query", "fragment", "form_post"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
			"issuer":                                base + "/v2.0",
			"request_uri_parameter_supported":       false,
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
			"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
			"tenant_region_scope":                   "EU",
			"cloud_instance_name":                   "microsoftonline.com",
		})
	case OpToken:
		return s.serveToken(w, r, tenant)
	}
	return entraError(w, http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests.")
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) int {
	if !s.tenantMatches(tenant) {
		return entraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found.", tenant))
	}
	if err := r.ParseForm(); err != nil {
		return entraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		return entraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
	case f.Get("client_id") != s.opts.ClientID:
		return entraError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), tenant))
	case f.Get("client_secret") == "":
		return entraError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case f.Get("client_secret") != s.opts.ClientSecret:
		return entraError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+s.opts.ClientID+"'.")
	}
	var resources []string
	for sc := range strings.FieldsSeq(f.Get("scope")) {
		switch sc {
		case "openid", "offline_access", "profile":
			continue
		}
		res, ok := strings.CutSuffix(sc, "/.default")
		if !ok {
			return entraError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", sc))
		}
		resources = append(resources, strings.TrimSuffix(res, "/"))
	}
	if len(resources) != 1 {
		return entraError(w, http.StatusBadRequest, "invalid_scope", 70011, "The provided request must include a 'scope' input parameter naming one resource.")
	}
	known := false
	for _, vr := range vaultResources {
		known = known || vr.resource == resources[0]
	}
	if !known {
		return entraError(w, http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", resources[0], tenant))
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	tok := "azurekvtest." + hex.EncodeToString(b)
	lifetime := s.opts.TokenLifetime
	s.mu.Lock()
	s.tokens[tok] = token{audience: resources[0], expires: s.opts.Now().Add(lifetime)}
	s.mu.Unlock()
	secs := int(lifetime / time.Second)
	return writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// authorized reports whether r carries a token valid for the vault host
// it was sent to.
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	resource, _ := resourceOf(r.Host)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	return ok && t.audience == resource && s.opts.Now().Before(t.expires)
}

// challenge answers a vault request without a valid token.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) int {
	resource, authority := resourceOf(r.Host)
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, authority, s.opts.TenantID, resource))
	msg := "AKV10000: Request is missing a Bearer or PoP token."
	if r.Header.Get("Authorization") != "" {
		msg = "AKV10022: Invalid audience, or the token has expired or was not issued for this vault."
	}
	return vaultError(w, http.StatusUnauthorized, "Unauthorized", msg, "")
}
