// Package wire encodes the stored form of a job, which is also the format
// non-Go producers write (see docs/architecture.md, "Wire format").
//
// A job body is a one-line JSON header, a newline, then the payload bytes
// verbatim. Header fields that equal the library defaults are omitted, which
// keeps a typical header near 40 bytes.
package wire

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Version is the header format version. Absent means 1.
const Version = 1

// Header is the JSON header of a stored job.
type Header struct {
	V             int               `json:"v,omitempty"`
	Name          string            `json:"name"`
	Created       int64             `json:"ts"`                 // ms since the epoch, producer clock
	Attempts      int               `json:"attempts,omitempty"` // 0 = default
	Backoff       *Backoff          `json:"backoff,omitempty"`  // nil = default
	Timeout       int64             `json:"timeout,omitempty"`  // ms; 0 = default
	Priority      int               `json:"priority,omitempty"`
	KeepCompleted *Retention        `json:"keep_completed,omitempty"` // nil = default
	KeepDead      *Retention        `json:"keep_dead,omitempty"`      // nil = default
	Meta          map[string]string `json:"meta,omitempty"`           // free-form metadata (e.g. a team ID)
	Schedule      string            `json:"schedule,omitempty"`       // key of the schedule that enqueued the job
}

// Backoff is a serialised retry policy.
type Backoff struct {
	Type   string  `json:"type"`             // "exponential", "fixed" or "custom"
	Base   int64   `json:"base,omitempty"`   // ms
	Factor float64 `json:"factor,omitempty"` // exponential only
	Max    int64   `json:"max,omitempty"`    // ms; exponential only
	Jitter float64 `json:"jitter,omitempty"` // fraction in [0,1]
	Name   string  `json:"name,omitempty"`   // custom only
}

// Retention bounds a terminal set: count 0 and age 0 mean "remove at once".
type Retention struct {
	Count int   `json:"count"`
	Age   int64 `json:"age"` // ms
}

// Encode returns header "\n" payload.
func Encode(h *Header, payload []byte) ([]byte, error) {
	if plain(h) {
		// The common header, {"name":...,"ts":...}, written directly: the
		// same bytes json.Marshal writes, at a fraction of its cost.
		out := make([]byte, 0, len(h.Name)+len(payload)+32)
		out = append(out, `{"name":"`...)
		out = append(out, h.Name...)
		out = append(out, `","ts":`...)
		out = strconv.AppendInt(out, h.Created, 10)
		out = append(out, "}\n"...)
		return append(out, payload...), nil
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(hb)+1+len(payload))
	out = append(out, hb...)
	out = append(out, '\n')
	return append(out, payload...), nil
}

// plain reports whether h has only a name and a creation time, and a name
// that JSON writes verbatim (printable ASCII other than '"', '\\', and the
// characters encoding/json escapes for HTML: '<', '>', '&').
func plain(h *Header) bool {
	if h.V != 0 || h.Attempts != 0 || h.Backoff != nil || h.Timeout != 0 || h.Priority != 0 ||
		h.KeepCompleted != nil || h.KeepDead != nil || len(h.Meta) != 0 || h.Schedule != "" {
		return false
	}
	for i := 0; i < len(h.Name); i++ {
		switch c := h.Name[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// ErrMalformed reports a stored body that is not header "\n" payload.
var ErrMalformed = errors.New("malformed job body")

// Decode splits a stored body into its header and payload.
func Decode(body string) (Header, []byte, error) {
	var h Header
	i := strings.IndexByte(body, '\n')
	if i < 0 {
		return h, nil, ErrMalformed
	}
	if err := json.Unmarshal([]byte(body[:i]), &h); err != nil {
		return h, nil, errors.Join(ErrMalformed, err)
	}
	if h.Name == "" {
		return h, nil, errors.Join(ErrMalformed, errors.New("header has no name"))
	}
	return h, []byte(body[i+1:]), nil
}
