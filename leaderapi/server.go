package leaderapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with the HTTP status it calls for; the leader's
// handlers return one, and WriteJSON answers with it.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an Error with the status and a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// WriteJSON answers with v, or, when err is not nil, with an ErrorResponse
// and err's status (500 unless err is an *Error).
func WriteJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusInternalServerError
		var ae *Error
		if errors.As(err, &ae) {
			status = ae.Status
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(ErrorResponse{Error: err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
