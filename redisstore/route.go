package redisstore

import (
	"strings"
	"unsafe"

	"github.com/go-json-experiment/json"

	"github.com/switchboard-go/switchboard"
)

// routeNames are the members of a stored route's JSON in the order
// json.Marshal writes them, each with the opening quote of its value.
var routeNames = [...]string{`"external_room_id":"`, `"channel_type":"`, `"bridge_id":"`, `"room_id":"`, `"thread_id":"`}

// decodeRoute decodes a stored route. The form json.Marshal writes for a
// route without Meta whose strings are ASCII without escapes — nearly
// every stored route — is read directly, its strings sharing s's memory;
// anything else goes through json.Unmarshal. In a CPU profile of Resolve
// hits at 64 goroutines, Unmarshal was 5% of the client's time.
// (FuzzDecodeRoute checks that the direct reading agrees with Unmarshal
// on whatever it accepts.)
func decodeRoute(s string, r *switchboard.Route) error {
	if canonicalRoute(s, r) {
		return nil
	}
	return unmarshalRoute(s, r)
}

// unmarshalRoute is decodeRoute's json.Unmarshal, into a Route of its own
// that it then copies to *r: the decoder's argument escapes to the heap,
// and so, were it r, would the Record of every read hit that r is part of
// (an allocation per hit; now only this path pays one).
func unmarshalRoute(s string, r *switchboard.Route) error {
	var out switchboard.Route
	// The decoder only reads its input: the string's bytes need no copy.
	err := json.Unmarshal(unsafe.Slice(unsafe.StringData(s), len(s)), &out)
	*r = out
	return err
}

// canonicalRoute reads s into *r and reports true when s is an object of
// routeNames members in that order, each at most once, with string values
// of printable ASCII other than '"' and '\', and nothing else (no
// whitespace); otherwise it leaves *r alone and reports false.
func canonicalRoute(s string, r *switchboard.Route) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return false
	}
	rest := s[1 : len(s)-1]
	var f [len(routeNames)]string
	next := 0 // members come in routeNames order
	for first := true; rest != ""; first = false {
		if !first {
			if rest[0] != ',' {
				return false
			}
			rest = rest[1:]
		}
		i := next
		for i < len(routeNames) && !strings.HasPrefix(rest, routeNames[i]) {
			i++
		}
		if i == len(routeNames) {
			return false
		}
		rest = rest[len(routeNames[i]):]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return false
		}
		v := rest[:end]
		for j := 0; j < len(v); j++ {
			if c := v[j]; c < 0x20 || c >= 0x7f || c == '\\' {
				return false
			}
		}
		f[i], next, rest = v, i+1, rest[end+1:]
	}
	*r = switchboard.Route{ExternalRoomID: f[0], ChannelType: f[1], BridgeID: f[2], RoomID: f[3], ThreadID: f[4]}
	return true
}
