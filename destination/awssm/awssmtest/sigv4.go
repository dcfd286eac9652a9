package awssmtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const service = "secretsmanager"

// verifySignature checks the request's SigV4 Authorization header against
// the server's access keys, region and service, and recomputes the
// signature over the headers it names and body. It returns the access
// key that signed, or the error AWS would answer.
func (s *Server) verifySignature(r *http.Request, body []byte) (string, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return "", &apiError{http.StatusBadRequest, "IncompleteSignatureException", "Unsupported signature algorithm."}
	}
	var cred, signed, sig string
	for part := range strings.SplitSeq(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || signed == "" || sig == "" {
		return "", &apiError{http.StatusBadRequest, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature."}
	}
	keyID, date, region, svc, term := scope[0], scope[1], scope[2], scope[3], scope[4]
	s.mu.Lock()
	key := s.keys[keyID]
	s.mu.Unlock()
	switch {
	case key == nil:
		return "", &apiError{http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."}
	case region != s.opts.Region:
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", "Credential should be scoped to a valid region."}
	case svc != service:
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", "Credential should be scoped to correct service: '" + service + "'."}
	case term != "aws4_request":
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", "Credential should be scoped with a valid terminator: 'aws4_request'."}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if len(amzDate) != len("20060102T150405Z") || amzDate[:8] != date {
		return "", &apiError{http.StatusBadRequest, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope's date."}
	}
	headers := strings.Split(signed, ";")
	if !slices.Contains(headers, "host") || !slices.Contains(headers, "x-amz-date") {
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", "The host and x-amz-date headers must be signed."}
	}

	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon.WriteString(path + "\n")
	canon.WriteString(r.URL.RawQuery + "\n") // the JSON protocol sends no query
	for _, h := range headers {
		canon.WriteString(h + ":" + headerValue(r, h) + "\n")
	}
	canon.WriteString("\n" + signed + "\n")
	payload := sha256.Sum256(body)
	canon.WriteString(hex.EncodeToString(payload[:]))
	creq := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(creq[:])

	k := hmacSHA256([]byte("AWS4"+key.secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, svc)
	k = hmacSHA256(k, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(k, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", &apiError{http.StatusBadRequest, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return keyID, nil
}

// headerValue is a header's canonical value: its values joined by ',',
// each trimmed, with runs of spaces collapsed.
func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vals := r.Header.Values(name)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
