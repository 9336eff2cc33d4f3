package keys

import "fmt"

// Limits of the allow-lists below.
const (
	MaxQueueNameLen = 100
	MaxPrefixLen    = 100
	MaxJobIDLen     = 200
	MaxJobNameLen   = 200
)

// CheckQueueName reports why s cannot be a queue name or key prefix, or "" if
// it can. Allowed: 1..MaxQueueNameLen bytes of ASCII letters, digits, '-', '_'
// and '.'. ':' '{' '}' are excluded because they structure keys.
func CheckQueueName(s string) string { return checkChars(s, MaxQueueNameLen, "-_.") }

// CheckPrefix is CheckQueueName for the key prefix; it also allows ':' so that
// prefixes such as "app:hopper" work.
func CheckPrefix(s string) string { return checkChars(s, MaxPrefixLen, "-_.:") }

// CheckJobID reports why s cannot be a caller-supplied job ID, or "". Allowed:
// 1..MaxJobIDLen bytes of ASCII letters, digits and - _ . : @ / + =.
func CheckJobID(s string) string { return checkChars(s, MaxJobIDLen, "-_.:@/+=") }

// CheckJobName reports why s cannot be a job name, or "". Job names are
// routing labels: 1..MaxJobNameLen bytes of printable ASCII without spaces.
func CheckJobName(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > MaxJobNameLen {
		return fmt.Sprintf("is %d bytes, longer than %d", len(s), MaxJobNameLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' {
			return fmt.Sprintf("has byte %q at %d; allowed: printable ASCII without spaces", c, i)
		}
	}
	return ""
}

func checkChars(s string, max int, extra string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > max {
		return fmt.Sprintf("is %d bytes, longer than %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		for j := 0; !ok && j < len(extra); j++ {
			ok = c == extra[j]
		}
		if !ok {
			return fmt.Sprintf("has byte %q at %d; allowed: ASCII letters, digits and %q", c, i, extra)
		}
	}
	return ""
}
