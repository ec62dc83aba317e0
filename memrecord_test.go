package switchboard

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/switchboard-go/switchboard/internal/memtable"
)

// TestRecordLayout keeps a memory slot at one aligned pair of cache lines:
// a hit reads its index bucket and this one slot.
func TestRecordLayout(t *testing.T) {
	if got := unsafe.Sizeof(memSlot{}); got != 64 {
		t.Errorf("memSlot is %d bytes, want 64", got)
	}
	if got := memtable.EntrySize[memSlot](); got != 128 {
		t.Errorf("a slot is %d bytes, want 128", got)
	}
}

func TestRecordStrings(t *testing.T) {
	meta := map[string]string{"k": "v"}
	tests := []struct {
		name           string
		route          Route
		writer, reason string
	}{
		{"empty", Route{}, "", ""},
		{"room only", Route{ExternalRoomID: "-100"}, "", ""},
		{"writer only", Route{}, "bridge", ""},
		{"all", Route{ExternalRoomID: "-100", ChannelType: "telegram", BridgeID: "bot", RoomID: "r", ThreadID: "t", Meta: meta}, "w", "gone"},
		{"thread and reason", Route{ExternalRoomID: "C1", ThreadID: "1.2"}, "", "bounced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r memRecord
			r.setStrings(&tt.route, tt.writer, tt.reason)
			if got := r.route(); !reflect.DeepEqual(got, tt.route) {
				t.Errorf("route() = %+v, want %+v", got, tt.route)
			}
			if r.writer() != tt.writer || r.invalidated() != tt.reason || r.tomb() != (tt.reason != "") {
				t.Errorf("writer %q reason %q tomb %v, want %q %q %v", r.writer(), r.invalidated(), r.tomb(), tt.writer, tt.reason, tt.reason != "")
			}
			if got, want := r.target(), tt.route.Target(); got != want {
				t.Errorf("target() = %+v, want %+v", got, want)
			}
			// The same strings again (other string memory): kept, no allocation.
			same := Route{ExternalRoomID: strings.Clone(tt.route.ExternalRoomID), ChannelType: strings.Clone(tt.route.ChannelType),
				BridgeID: strings.Clone(tt.route.BridgeID), RoomID: strings.Clone(tt.route.RoomID), ThreadID: strings.Clone(tt.route.ThreadID), Meta: meta}
			before := unsafe.StringData(r.strs)
			if n := testing.AllocsPerRun(10, func() { r.setStrings(&same, tt.writer, tt.reason) }); n != 0 {
				t.Errorf("setStrings with the same strings allocates %v times", n)
			}
			if unsafe.StringData(r.strs) != before {
				t.Error("setStrings with the same strings replaced the stored string")
			}
			// Then a different route: everything follows.
			other := Route{ExternalRoomID: "x" + tt.route.ExternalRoomID, BridgeID: "b"}
			r.setStrings(&other, "", "")
			if got := r.route(); !reflect.DeepEqual(got, other) || r.writer() != "" || r.tomb() {
				t.Errorf("after a new route: %+v writer %q tomb %v", got, r.writer(), r.tomb())
			}
		})
	}
}
