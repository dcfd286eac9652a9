package ghactionstest

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Access is the level of a fine-grained permission. Write includes Read.
type Access string

// Levels of access.
const (
	Read  Access = "read"
	Write Access = "write"
)

// includes reports whether a grants what b asks for.
func (a Access) includes(b Access) bool {
	switch b {
	case Read:
		return a == Read || a == Write
	case Write:
		return a == Write
	}
	return false
}

// The fine-grained permissions the server checks, named as GitHub names
// them in the X-Accepted-GitHub-Permissions header and in a GitHub App's
// permissions.
const (
	// PermSecrets is the repository permission "Secrets".
	PermSecrets = "secrets"
	// PermEnvironments is the repository permission "Environments".
	PermEnvironments = "environments"
	// PermMetadata is the repository permission "Metadata". GitHub grants
	// it (read) to every fine-grained token with a repository permission;
	// the server does not, so that a test can see whether it is needed.
	PermMetadata = "metadata"
	// PermOrganizationSecrets is the organization permission "Secrets".
	PermOrganizationSecrets = "organization_secrets"
)

// The scopes of classic tokens the server checks.
const (
	ScopeRepo     = "repo"
	ScopeAdminOrg = "admin:org"
)

// TokenKind is the kind of an access token, which decides what of a
// Grant applies and how a refusal is worded.
type TokenKind int

const (
	// FineGrained is a fine-grained personal access token:
	// Grant.Permissions apply, and a refusal says "Resource not
	// accessible by personal access token".
	FineGrained TokenKind = iota
	// Installation is a GitHub App installation token: Grant.Permissions
	// apply, and a refusal says "Resource not accessible by integration".
	Installation
	// Classic is a personal access token (classic) or an OAuth app token:
	// Grant.Scopes apply.
	Classic
)

func (k TokenKind) String() string {
	switch k {
	case FineGrained:
		return "fine-grained"
	case Installation:
		return "installation"
	case Classic:
		return "classic"
	}
	return "TokenKind(" + strconv.Itoa(int(k)) + ")"
}

// Grant is what a token registered with [Server.AddToken] may do.
//
// What each request needs is what GitHub's REST documentation says in the
// "Fine-grained access tokens" and "OAuth app tokens and personal access
// tokens (classic)" notes of each endpoint (the same under
// /repos/{owner}/{repo}/environments/{env} and
// /repositories/{repository_id}/environments/{env}):
//
//	request                                    fine-grained                      classic
//	GET /repos/{owner}/{repo}                  metadata=read                     repo
//	repository secrets: GET (list, key, one)   secrets=read                      repo
//	repository secrets: PUT, DELETE            secrets=write                     repo
//	environment secrets: GET                   environments=read,secrets=read    repo
//	environment secrets: PUT, DELETE           environments=write,secrets=write  repo
//	organization secrets: GET                  organization_secrets=read         admin:org
//	organization secrets: PUT, DELETE          organization_secrets=write        admin:org
//
// (GitHub asks no scope to read a public repository; the server's
// repositories are private.) A fine-grained token that lacks a permission
// gets 403 {"message":"Resource not accessible by personal access
// token"} ("by integration" for an Installation), with the endpoint's
// documentation_url; a classic token that lacks the scope gets 404
// {"message":"Not Found"} for a repository's or environment's secrets and
// for the repository (GitHub answers 404 rather than confirm that a
// private repository exists), and 403 {"message":"Must have admin rights
// to Repository."} for an organization's secrets, as GitHub answers.
// Every answer to a fine-grained token carries X-Accepted-GitHub-Permissions
// (what the endpoint needs, as in the table); every answer to a classic
// token carries X-OAuth-Scopes (the token's scopes) and
// X-Accepted-OAuth-Scopes (the endpoint's scope).
type Grant struct {
	Kind TokenKind
	// Permissions of a FineGrained or Installation token: permission
	// (PermSecrets, ...) to access. A permission absent has no access.
	Permissions map[string]Access
	// Scopes of a Classic token (ScopeRepo, ScopeAdminOrg, ...).
	Scopes []string
}

// AddToken registers token with what g grants, or replaces the grant of a
// token registered before. Requests with token are then authenticated and
// checked against g. The server's own token (Server.Token) may do
// anything unless AddToken restricts it too.
func (s *Server) AddToken(token string, g Grant) {
	g.Permissions = maps.Clone(g.Permissions)
	g.Scopes = slices.Clone(g.Scopes)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants[token] = &g
}

// place is the kind of a place of secrets.
type place int

const (
	placeRepository place = iota
	placeEnvironment
	placeOrganization
	placeRepositoryItself // GET /repos/{owner}/{repo}
)

// need is what a request needs of a token.
type need struct {
	perms []permAccess // every one of them, for fine-grained tokens
	scope string       // for classic tokens
	docs  string       // the endpoint's documentation
}

type permAccess struct {
	perm   string
	access Access
}

// header renders what n needs as X-Accepted-GitHub-Permissions does.
func (n need) header() string {
	parts := make([]string, len(n.perms))
	for i, p := range n.perms {
		parts[i] = p.perm + "=" + string(p.access)
	}
	return strings.Join(parts, ",")
}

// needOf returns what op on a place of kind k needs.
func needOf(op Op, k place) (need, bool) {
	access := Read
	switch op {
	case OpPutSecret, OpDeleteSecret:
		access = Write
	case OpGetPublicKey, OpListSecrets, OpGetSecret, OpGetRepository:
	default:
		return need{}, false
	}
	if k == placeRepositoryItself {
		return need{perms: []permAccess{{PermMetadata, Read}}, scope: ScopeRepo, docs: "https://docs.github.com/rest/repos/repos#get-a-repository"}, true
	}
	var (
		n     need
		slugs map[Op]string
	)
	switch k {
	case placeRepository:
		n = need{perms: []permAccess{{PermSecrets, access}}, scope: ScopeRepo}
		slugs = map[Op]string{OpGetPublicKey: "get-a-repository-public-key", OpListSecrets: "list-repository-secrets", OpGetSecret: "get-a-repository-secret", OpPutSecret: "create-or-update-a-repository-secret", OpDeleteSecret: "delete-a-repository-secret"}
	case placeEnvironment:
		n = need{perms: []permAccess{{PermEnvironments, access}, {PermSecrets, access}}, scope: ScopeRepo}
		slugs = map[Op]string{OpGetPublicKey: "get-an-environment-public-key", OpListSecrets: "list-environment-secrets", OpGetSecret: "get-an-environment-secret", OpPutSecret: "create-or-update-an-environment-secret", OpDeleteSecret: "delete-an-environment-secret"}
	case placeOrganization:
		n = need{perms: []permAccess{{PermOrganizationSecrets, access}}, scope: ScopeAdminOrg}
		slugs = map[Op]string{OpGetPublicKey: "get-an-organization-public-key", OpListSecrets: "list-organization-secrets", OpGetSecret: "get-an-organization-secret", OpPutSecret: "create-or-update-an-organization-secret", OpDeleteSecret: "delete-an-organization-secret"}
	default:
		return need{}, false
	}
	n.docs = docsSecrets + "#" + slugs[op]
	return n, true
}

// permit sets the headers GitHub sends to a token of g's kind and checks
// that g grants what the request needs; when it does not, it answers as
// GitHub does and returns false.
func (s *Server) permit(w http.ResponseWriter, r *http.Request, op Op, in *reqInfo, g *Grant) bool {
	var k place
	switch {
	case in.secrets != nil:
		k = in.secrets.kind
	case op == OpGetRepository && s.repo(r.PathValue("owner"), r.PathValue("repo")) != nil:
		k = placeRepositoryItself
	default:
		return true // answered 404 by the handler
	}
	n, ok := needOf(op, k)
	if !ok {
		return true
	}
	h := w.Header()
	if g.Kind == Classic {
		h.Set("X-OAuth-Scopes", strings.Join(g.Scopes, ", "))
		h.Set("X-Accepted-OAuth-Scopes", n.scope)
		if slices.Contains(g.Scopes, n.scope) {
			return true
		}
		if k == placeOrganization {
			writeError(w, http.StatusForbidden, "Must have admin rights to Repository.", n.docs)
		} else {
			writeError(w, http.StatusNotFound, "Not Found", n.docs)
		}
		return false
	}
	h.Set("X-Accepted-GitHub-Permissions", n.header())
	for _, p := range n.perms {
		if !g.Permissions[p.perm].includes(p.access) {
			who := "personal access token"
			if g.Kind == Installation {
				who = "integration"
			}
			writeError(w, http.StatusForbidden, "Resource not accessible by "+who, n.docs)
			return false
		}
	}
	return true
}
