package httpapi

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
)

// response is Vault's envelope of every answer with a body.
type response struct {
	RequestID     string   `json:"request_id"`
	LeaseID       string   `json:"lease_id"`
	Renewable     bool     `json:"renewable"`
	LeaseDuration int      `json:"lease_duration"`
	Data          any      `json:"data"`
	WrapInfo      any      `json:"wrap_info"`
	Warnings      []string `json:"warnings"` // null when there is none, as in Vault
	Auth          any      `json:"auth"`
}

// errorBody is Vault's error answer; Data is set only by the sync
// resources, for a round or a plan that failed with a report.
type errorBody struct {
	Errors []string `json:"errors"`
	Data   any      `json:"data,omitempty"`
}

// writeData answers 200 with data in Vault's envelope.
func writeData(q *request, data any, warnings []string) {
	writeJSON(q.w, http.StatusOK, response{RequestID: q.id, Data: data, Warnings: warnings})
}

// writeError answers status with Vault's error body. msg must hold no
// value; an empty msg answers {"errors": []}, as Vault does for a path it
// does not know.
func writeError(w http.ResponseWriter, status int, msg string) {
	body := errorBody{Errors: []string{}}
	if msg != "" {
		body.Errors = append(body.Errors, msg)
	}
	writeJSON(w, status, body)
}

// writeErrorData answers status with Vault's error body and, when data is
// not nil, data beside it (a nil interface, not a nil pointer).
func writeErrorData(w http.ResponseWriter, status int, msg string, data any) {
	writeJSON(w, status, errorBody{Errors: []string{msg}, Data: data})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":["cannot encode the response"]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
