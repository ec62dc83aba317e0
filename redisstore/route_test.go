package redisstore

import (
	"reflect"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/switchboard-go/switchboard"
)

// TestDecodeRoute: what json.Marshal writes for routes without Meta in
// ASCII is read directly, and decodes as Unmarshal decodes it; other forms
// take Unmarshal.
func TestDecodeRoute(t *testing.T) {
	for _, tt := range []struct {
		route     switchboard.Route
		canonical bool
	}{
		{switchboard.Route{ExternalRoomID: "-1001234567890"}, true},
		{switchboard.Route{ExternalRoomID: "-1001234567890", ChannelType: "telegram"}, true},
		{switchboard.Route{ExternalRoomID: "C0123", ChannelType: "slack", BridgeID: "b", RoomID: "r", ThreadID: "1700000000.000100"}, true},
		{switchboard.Route{ExternalRoomID: "!room:matrix.org", ThreadID: "$ev"}, true},
		{switchboard.Route{ExternalRoomID: `a"b\c`}, false},                                // escapes
		{switchboard.Route{ExternalRoomID: "café"}, false},                                 // not ASCII
		{switchboard.Route{ExternalRoomID: "r", Meta: map[string]string{"k": "v"}}, false}, // Meta
	} {
		raw, err := json.Marshal(tt.route)
		if err != nil {
			t.Fatal(err)
		}
		var direct switchboard.Route
		if got := canonicalRoute(string(raw), &direct); got != tt.canonical {
			t.Errorf("canonicalRoute(%s) = %v, want %v", raw, got, tt.canonical)
		}
		var got switchboard.Route
		if err := decodeRoute(string(raw), &got); err != nil || !reflect.DeepEqual(got, tt.route) {
			t.Errorf("decodeRoute(%s) = %+v, %v; want %+v", raw, got, err, tt.route)
		}
	}
	for _, bad := range []string{"", "{", `{"external_room_id":"a"`, `{"external_room_id":1}`, "null"} {
		var r switchboard.Route
		if canonicalRoute(bad, &r) {
			t.Errorf("canonicalRoute(%q) accepted it", bad)
		}
	}
	// Out of order, duplicated, unknown or spaced members are not the
	// canonical form, but Unmarshal may still read them.
	for _, other := range []string{`{"channel_type":"t","external_room_id":"r"}`, `{"external_room_id":"a","external_room_id":"b"}`,
		`{"external_room_id":"r","x":"y"}`, `{ "external_room_id":"r"}`} {
		var r switchboard.Route
		if canonicalRoute(other, &r) {
			t.Errorf("canonicalRoute(%q) accepted it", other)
		}
	}
}

// FuzzDecodeRoute checks the direct reading against json.Unmarshal: what
// canonicalRoute accepts, Unmarshal accepts and decodes the same.
func FuzzDecodeRoute(f *testing.F) {
	for _, s := range []string{`{}`, `{"external_room_id":"-100123"}`, `{"external_room_id":"r","channel_type":"telegram"}`,
		`{"external_room_id":"r","thread_id":"t"}`, `{"external_room_id":"a","external_room_id":"b"}`, `{"external_room_id":"a\"}`,
		`{"external_room_id":"","channel_type":"","bridge_id":"","room_id":"","thread_id":""}`, `{"meta":{}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var direct switchboard.Route
		if !canonicalRoute(s, &direct) {
			return
		}
		var want switchboard.Route
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("canonicalRoute accepted %q, Unmarshal refuses it: %v", s, err)
		}
		if !reflect.DeepEqual(direct, want) {
			t.Fatalf("%q: canonicalRoute %+v, Unmarshal %+v", s, direct, want)
		}
	})
}
