package switchboard_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-go/switchboard"
)

func TestParseSessionKey(t *testing.T) {
	tests := []struct {
		in      string
		want    switchboard.SessionKey
		wantErr string // substring of the error; "" means success
	}{
		{in: "telegram:bot_1:chat_123", want: switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}},
		{in: "slack:T1:C1:169.01", want: switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1", ThreadID: "169.01"}},
		{in: "matrix:b:!abc%3Amatrix.org", want: switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org"}},
		{in: "matrix:b:!abc%3amatrix.org", want: switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!abc:matrix.org"}},
		{in: "x:100%25:r", want: switchboard.SessionKey{ChannelType: "x", BridgeID: "100%", RoomID: "r"}},
		{in: "x:%2525:r", want: switchboard.SessionKey{ChannelType: "x", BridgeID: "%25", RoomID: "r"}},
		{in: "", wantErr: "1 components"},
		{in: "telegram", wantErr: "1 components"},
		{in: "telegram:bot_1", wantErr: "2 components"},
		{in: "a:b:c:d:e", wantErr: "more than 4"},
		{in: ":b:c", wantErr: "ChannelType is empty"},
		{in: "a::c", wantErr: "BridgeID is empty"},
		{in: "a:b:", wantErr: "RoomID is empty"},
		{in: "a:b:c:", wantErr: "ThreadID is empty"},
		{in: "a:b%:c", wantErr: "bad escape"},
		{in: "a:b%4:c", wantErr: "bad escape"},
		{in: "a:b%41:c", wantErr: "bad escape"},
		{in: "a:b:c%", wantErr: "bad escape"},
		{in: "a:b\x00:c", wantErr: "control character"},
		{in: "a:b:c\xff", wantErr: "not valid UTF-8"},
		{in: "a:b:" + strings.Repeat("r", switchboard.MaxFieldLen+1), wantErr: "longer than 512"},
		{in: "a:b:" + strings.Repeat("%3A", switchboard.MaxFieldLen/3) + "x", want: switchboard.SessionKey{ChannelType: "a", BridgeID: "b", RoomID: strings.Repeat(":", switchboard.MaxFieldLen/3) + "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := switchboard.ParseSessionKey(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, switchboard.ErrInvalidSessionKey) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSessionKey(%q) = %#v, %v; want ErrInvalidSessionKey mentioning %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSessionKey(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSessionKeyValidate(t *testing.T) {
	tests := []struct {
		key       switchboard.SessionKey
		wantField string // "" means valid
	}{
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}, ""},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "t"}, ""},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "ラーメン 🍜"}, ""},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: strings.Repeat("é", switchboard.MaxFieldLen/2)}, ""},
		{switchboard.SessionKey{}, "ChannelType"},
		{switchboard.SessionKey{ChannelType: "c", RoomID: "r"}, "BridgeID"},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b"}, "RoomID"},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "a\x1fb"}, "ThreadID"},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b\u007f", RoomID: "r"}, "BridgeID"},
		{switchboard.SessionKey{ChannelType: "c\xed\xa0\x80", BridgeID: "b", RoomID: "r"}, "ChannelType"}, // a surrogate
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: strings.Repeat("é", switchboard.MaxFieldLen/2+1)}, "RoomID"},
	}
	for _, tt := range tests {
		err := tt.key.Validate()
		if tt.wantField == "" {
			if err != nil {
				t.Errorf("%#v.Validate() = %v, want nil", tt.key, err)
			}
			continue
		}
		if !errors.Is(err, switchboard.ErrInvalidSessionKey) || !strings.Contains(err.Error(), tt.wantField) {
			t.Errorf("%#v.Validate() = %v, want ErrInvalidSessionKey naming %s", tt.key, err, tt.wantField)
		}
	}
}

func TestSessionKeyScope(t *testing.T) {
	thread := switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "t"}
	room := thread.RoomScope()
	if room != (switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r"}) {
		t.Fatalf("RoomScope() = %#v", room)
	}
	if thread.ThreadID != "t" {
		t.Fatal("RoomScope changed its receiver")
	}
	tests := []struct {
		a, b switchboard.SessionKey
		want bool
	}{
		{thread, room, true},
		{thread, switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r", ThreadID: "u"}, true},
		{thread, switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r2"}, false},
		{thread, switchboard.SessionKey{ChannelType: "c", BridgeID: "b2", RoomID: "r"}, false},
		{thread, switchboard.SessionKey{ChannelType: "c2", BridgeID: "b", RoomID: "r"}, false},
	}
	for _, tt := range tests {
		if got := tt.a.SameRoom(tt.b); got != tt.want {
			t.Errorf("%v.SameRoom(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSessionKeyText(t *testing.T) {
	type doc struct {
		Key switchboard.SessionKey `json:"key"`
	}
	in := doc{Key: switchboard.SessionKey{ChannelType: "matrix", BridgeID: "b", RoomID: "!a:m.org", ThreadID: "$e"}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != `{"key":"matrix:b:!a%3Am.org:$e"}` {
		t.Fatalf("json = %s", data)
	}
	var out doc
	if err := json.Unmarshal(data, &out); err != nil || out != in {
		t.Fatalf("round trip = %#v, %v", out, err)
	}
	// The zero key is the empty text, both ways.
	if data, err = json.Marshal(doc{}); err != nil || string(data) != `{"key":""}` {
		t.Fatalf("zero key json = %s, %v", data, err)
	}
	if err := json.Unmarshal([]byte(`{"key":""}`), &out); err != nil || out != (doc{}) {
		t.Fatalf("empty text = %#v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"key":"a:b"}`), &out); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
		t.Fatalf("bad text: err = %v, want ErrInvalidSessionKey", err)
	}
	if _, err := json.Marshal(doc{Key: switchboard.SessionKey{ChannelType: "c"}}); !errors.Is(err, switchboard.ErrInvalidSessionKey) {
		t.Fatalf("marshal invalid key: err = %v, want ErrInvalidSessionKey", err)
	}
}

// FuzzParseSessionKey checks that parsing never panics, that whatever
// parses is valid and prints back to a string that parses to the same key,
// and that every valid key built from the fuzzed parts round-trips.
func FuzzParseSessionKey(f *testing.F) {
	for _, s := range []string{
		"telegram:bot_1:chat_123", "slack:T1:C1:169.01", "matrix:b:!abc%3Amatrix.org", "x:100%25:r:%3A",
		"a:b", "a:b:c:d:e", "a:b%:c", "a:b:c\xff", ":::", "%3A:%25:%3a",
	} {
		f.Add(s, "c", "b", "r", "t")
	}
	f.Fuzz(func(t *testing.T, s, ch, br, room, thread string) {
		if k, err := switchboard.ParseSessionKey(s); err == nil {
			if verr := k.Validate(); verr != nil {
				t.Fatalf("ParseSessionKey(%q) = %#v which fails Validate: %v", s, k, verr)
			}
			again, err := switchboard.ParseSessionKey(k.String())
			if err != nil || again != k {
				t.Fatalf("ParseSessionKey(%q).String() = %q parses to %#v, %v", s, k.String(), again, err)
			}
		} else if !errors.Is(err, switchboard.ErrInvalidSessionKey) {
			t.Fatalf("ParseSessionKey(%q): error %v does not wrap ErrInvalidSessionKey", s, err)
		}
		k := switchboard.SessionKey{ChannelType: ch, BridgeID: br, RoomID: room, ThreadID: thread}
		if k.Validate() != nil {
			return
		}
		got, err := switchboard.ParseSessionKey(k.String())
		if err != nil || got != k {
			t.Fatalf("ParseSessionKey(%q) = %#v, %v; want %#v", k.String(), got, err, k)
		}
		if b, err := k.AppendText([]byte("p:")); err != nil || string(b) != "p:"+k.String() {
			t.Fatalf("AppendText = %q, %v; want %q", b, err, "p:"+k.String())
		}
	})
}

func TestSessionKeyAppendText(t *testing.T) {
	tests := []struct {
		key     switchboard.SessionKey
		want    string
		invalid bool
	}{
		{switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123"}, "x/telegram:bot_1:chat_123", false},
		{switchboard.SessionKey{ChannelType: "slack", BridgeID: "T1", RoomID: "C1", ThreadID: "169.01"}, "x/slack:T1:C1:169.01", false},
		{switchboard.SessionKey{ChannelType: "matrix", BridgeID: "100%", RoomID: "!a:m.org"}, "x/matrix:100%25:!a%3Am.org", false},
		{switchboard.SessionKey{}, "x/", false},
		{switchboard.SessionKey{ChannelType: "c"}, "x/", true},
		{switchboard.SessionKey{ChannelType: "c", BridgeID: "b", RoomID: "r\x00"}, "x/", true},
	}
	for _, tt := range tests {
		got, err := tt.key.AppendText([]byte("x/"))
		if string(got) != tt.want || (err != nil) != tt.invalid || (tt.invalid && !errors.Is(err, switchboard.ErrInvalidSessionKey)) {
			t.Errorf("%#v.AppendText = %q, %v; want %q, invalid %v", tt.key, got, err, tt.want, tt.invalid)
		}
		if !tt.invalid && tt.key != (switchboard.SessionKey{}) && string(got) != "x/"+tt.key.String() {
			t.Errorf("AppendText %q differs from String %q", got, tt.key.String())
		}
	}
}

// BenchmarkAppendText: the string form of a key, as the Redis backend
// builds a record key on every read hit.
func BenchmarkAppendText(b *testing.B) {
	k := switchboard.SessionKey{ChannelType: "telegram", BridgeID: "bot_1", RoomID: "chat_123456", ThreadID: "topic_7"}
	buf := make([]byte, 0, 64)
	for b.Loop() {
		var err error
		if buf, err = k.AppendText(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
