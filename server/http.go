package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync/atomic"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/switchboard-go/switchboard/internal/wire"
)

// RequestIDHeader is the header that carries a request's id: taken from
// the request when it is sane (1–128 letters, digits, '-', '_', '.', ':'),
// generated otherwise, and echoed in every answer and in the server's log
// lines about the request.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the request id the Server gave the request of ctx ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDs makes the ids of requests that bring none: 24 hex digits, a
// random prefix drawn once per Server (48 bits) and a counter (48 bits), so
// ids are unique within a Server and, with high probability, across its
// restarts and replicas, for one formatting allocation each (a random id
// per request cost a getrandom call).
type requestIDs struct {
	prefix [12]byte
	seq    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	ids := &requestIDs{}
	var b [6]byte
	_, _ = rand.Read(b[:])
	hex.Encode(ids.prefix[:], b[:])
	return ids
}

// of returns r's id: its own when sane, else a new one.
func (ids *requestIDs) of(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); saneID(id) {
		return id
	}
	const digits = "0123456789abcdef"
	var b [24]byte
	copy(b[:], ids.prefix[:])
	n := ids.seq.Add(1)
	for i := len(b) - 1; i >= len(ids.prefix); i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}

func saneID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// front refuses, in the error envelope, what no endpoint takes before it
// reaches the router (which would answer some of it with a redirect or
// plain text): headers over wire.MaxHeaderBytes (431), paths that are not
// canonical, such as "//x" or "/a/../b" (404, never a redirect), and bodies
// of a content type that is not JSON (415). Bodies are always parsed as
// JSON; a Content-Type is not required, and "application/json" (any
// parameters) and "application/x-www-form-urlencoded" (what curl -d sends)
// are accepted.
func front(w http.ResponseWriter, r *http.Request) bool {
	size := len(r.Method) + len(r.RequestURI) + 12
	for k, vs := range r.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > wire.MaxHeaderBytes {
		writeError(w, wire.CodeHeaderTooLarge, fmt.Sprintf("the request's headers exceed %d bytes", wire.MaxHeaderBytes))
		return false
	}
	if p := r.URL.EscapedPath(); p != "/" && (strings.HasSuffix(p, "/") || !plainPath(p) && path.Clean(p) != p) {
		writeError(w, wire.CodeNotFound, fmt.Sprintf("no endpoint %s %s (paths are not cleaned or redirected)", r.Method, p))
		return false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded" && !strings.HasSuffix(mt, "+json")) {
			writeError(w, wire.CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %q: the body must be JSON (application/json)", ct))
			return false
		}
	}
	return true
}

// plainPath reports whether p is rooted and has no empty, "." or ".."
// element, so that path.Clean would return it unchanged (when it also does
// not end in "/"): two substring searches instead of Clean's walk, which
// was 6% of a PUT's handler time.
func plainPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.Contains(p, "//") && !strings.Contains(p, "/.")
}

// decodeOptions are the rules of request bodies: member names match
// exactly (case-sensitively), unknown and duplicate members are refused,
// strings must be valid UTF-8, and nothing may follow the value.
var decodeOptions = json.JoinOptions(json.RejectUnknownMembers(true))

// decode reads a JSON body of at most wire.MaxBodyBytes into v by
// decodeOptions, answering 400 invalid_json (or 413) with a message in the
// API's own names when it does not fit.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := readBody(w, r)
	if err != nil {
		// Declared here, not above: errors.As takes its address, which
		// would put it on the heap for every request.
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, wire.CodeBodyTooLarge, fmt.Sprintf("the body exceeds %d bytes", wire.MaxBodyBytes))
		} else {
			writeError(w, wire.CodeInvalidJSON, "the body could not be read")
		}
		return false
	}
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		writeError(w, wire.CodeInvalidJSON, "the body is empty; a JSON object is required")
		return false
	}
	if err := json.Unmarshal(data, v, decodeOptions); err != nil {
		writeError(w, wire.CodeInvalidJSON, "invalid JSON body: "+jsonMessage(err))
		return false
	}
	return true
}

// readBody reads r's body, at most wire.MaxBodyBytes: into one buffer of
// the declared length when there is one (the common case, one allocation;
// a declared length over the limit is refused unread), else as io.ReadAll
// does through an http.MaxBytesReader.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	switch n := r.ContentLength; {
	case n > wire.MaxBodyBytes:
		return nil, &http.MaxBytesError{Limit: wire.MaxBodyBytes}
	case n > 0: // net/http stops the body at its declared length
		data := make([]byte, n)
		if _, err := io.ReadFull(r.Body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes))
}

// jsonMessage describes a decoding error by the JSON's own terms: where
// (a JSON pointer) and what, without Go type names.
func jsonMessage(err error) string {
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		where := string(se.JSONPointer)
		if where == "" {
			where = "the top level"
		}
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			return fmt.Sprintf("unknown member %s (names are matched exactly; see the API document)", where)
		case se.JSONKind != 0:
			return fmt.Sprintf("at %s: a JSON %s is not allowed here, want %s", where, kindName(se.JSONKind), wantOf(se))
		}
		return fmt.Sprintf("at %s: not a valid value", where)
	case errors.As(err, &syn):
		where := string(syn.JSONPointer)
		if where == "" {
			where = "the top level"
		}
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return fmt.Sprintf("duplicate member %s", where)
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return "the JSON ends too early"
		}
		msg := syn.Err.Error()
		if strings.Contains(msg, "invalid UTF-8") {
			return fmt.Sprintf("invalid UTF-8 in a string at %s", where)
		}
		return fmt.Sprintf("malformed JSON at byte %d (%s): %s", syn.ByteOffset, where, strings.TrimPrefix(msg, "jsontext: "))
	}
	return "malformed JSON"
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

// wantOf names the JSON that was expected, from the Go type's kind.
func wantOf(se *json.SemanticError) string {
	if se.GoType == nil {
		return "another kind of value"
	}
	switch se.GoType.Kind().String() {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint64", "uint":
		return "an integer"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "another kind of value"
}

// wireNames rewrites the library's Go field names in error messages to
// the API's JSON names.
var wireNames = strings.NewReplacer(
	"ExternalRoomID", "external_room_id", "ChannelType", "channel_type", "BridgeID", "bridge_id",
	"RoomID", "room_id", "ThreadID", "thread_id", "Meta", "meta", "IfRevision", "If-Match", "IfAbsent", "If-None-Match",
)
