package witness

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors returned by [Witness.AddCheckpoint]. Each maps to one HTTP status
// code of the tlog-witness protocol (see statusOf).
var (
	// ErrMalformed: the request or checkpoint does not follow the protocol,
	// or the old size is larger than the checkpoint size (400).
	ErrMalformed = errors.New("malformed request")
	// ErrUnknownOrigin: the witness is not configured for the checkpoint's
	// origin (404).
	ErrUnknownOrigin = errors.New("unknown log origin")
	// ErrUntrusted: no signature from a trusted key of the log verifies, or
	// one from a trusted key fails to verify (403).
	ErrUntrusted = errors.New("no valid signature from a trusted log key")
	// ErrInconsistent: the checkpoint cannot be shown consistent with the
	// cosigned state: the proof does not verify, the root differs at the
	// same size, or a size 0 checkpoint has a non-empty root (422).
	ErrInconsistent = errors.New("checkpoint is not consistent with the witnessed state")
	// ErrTooLarge: the request body is larger than MaxRequestSize (413).
	ErrTooLarge = errors.New("request body too large")
)

// ConflictError is returned when the request's old size is not the size of
// the latest checkpoint the witness cosigned for the log (409). Clients
// retry with Size as the old size.
type ConflictError struct {
	// Size of the latest cosigned checkpoint, 0 if there is none.
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("old size does not match the witnessed size %d", e.Size)
}

// statusOf maps an AddCheckpoint error to its HTTP status. It is the only
// place where errors become status codes.
func statusOf(err error) int {
	var conflict *ConflictError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &conflict):
		return http.StatusConflict
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownOrigin):
		return http.StatusNotFound
	case errors.Is(err, ErrUntrusted):
		return http.StatusForbidden
	case errors.Is(err, ErrInconsistent):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}
